"""Held-out CSP evaluation of a checkpoint, in-process (autoperi_model.Generator), and the
in-process sampler that samples (CSP or de novo) from any checkpoint of the object store.

Metric: DiffCSP's k = 1 match rate (CDVAE gating: the prediction must be valid) over a small,
fixed held-out set: one sample per held-out crystal with its exact atom list, matched with
StructureMatcher(stol=0.5, angle_tol=10, ltol=0.3) (`autoperi_eval.rms_pair`), summarised by
`autoperi_eval.match_metrics`. The seed is fixed, so the same checkpoint gets the same metric.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from autoperi_data import CrystalArrays, read_records
from storage import ObjectStore
from xtal import Crystal, convert

from loop_svc._clients import CrystalMessage, fetch_checkpoint_dir
from loop_svc._spec import ChemicalSpace

log = logging.getLogger("loop_svc.evaluate")


def held_out_crystals(path: Path, n: int) -> list[Crystal]:
    """The first `n` valid crystals of a CSV/CIF file (e.g. Perov-5 val.csv)."""
    valid = (r.crystal for r in read_records(path) if r.crystal is not None)
    return list(itertools.islice(valid, n))


class _Generators:
    """Generators of checkpoints of the object store, loaded once each."""

    def __init__(self, objects: ObjectStore, cache: Path) -> None:
        self.objects, self.cache, self._loaded = objects, Path(cache), {}

    def get(self, checkpoint_id: str):  # -> autoperi_model.Generator
        from autoperi_model import Generator

        if checkpoint_id not in self._loaded:
            path = fetch_checkpoint_dir(self.objects, checkpoint_id, self.cache)
            generator = Generator.from_checkpoint(path)
            generator.checkpoint_id = checkpoint_id
            self._loaded = {checkpoint_id: generator}  # keep one model in memory
        return self._loaded[checkpoint_id]


class LocalSampler:
    """Samples in this process from the loop's current checkpoint (any id of the store); replies
    with messages, as the sampler service does."""

    def __init__(self, objects: ObjectStore, cache: Path) -> None:
        self._generators = _Generators(objects, cache)

    def sample(
        self, compositions: Sequence[str], n: int, steps: int, seed: int, checkpoint_id: str
    ) -> tuple[list[CrystalMessage], str]:
        generator = self._generators.get(checkpoint_id)
        crystals = generator.generate_csp(list(compositions), n, steps or None, seed=seed)
        return [convert.to_proto(c) for c in crystals], checkpoint_id

    def sample_de_novo(
        self, space: ChemicalSpace, n: int, steps: int, seed: int, checkpoint_id: str
    ) -> tuple[list[CrystalMessage], str]:
        """`n` de novo crystals on `space` (sample i seeded by `sample_seed(seed, i)`)."""
        elements, required = space.atomic_numbers()
        crystals = self._generators.get(checkpoint_id).generate_dng(
            n, steps or None, seed=seed, elements=elements,
            atoms=(space.min_atoms, space.max_atoms), required=required,
        )  # fmt: skip
        return [convert.to_proto(c) for c in crystals], checkpoint_id

    def generator(self, checkpoint_id: str):  # -> autoperi_model.Generator
        """The checkpoint's generator (loaded once; the last one used is kept)."""
        return self._generators.get(checkpoint_id)


class CspEvaluator:
    """k = 1 CSP match rate of a checkpoint on `held_out` (see the module docstring)."""

    def __init__(
        self,
        held_out: Sequence[Crystal],
        objects: ObjectStore,
        cache: Path,
        steps: int = 0,
        seed: int = 0,
    ) -> None:
        if not held_out:
            raise ValueError("the held-out set is empty")
        self.held_out, self.steps, self.seed = list(held_out), steps, seed
        self._generators = _Generators(objects, cache)

    def evaluate(self, checkpoint_id: str) -> dict[str, float]:
        """{"match_rate", "rmse", "n_matched", "n", "valid_rate"} of the checkpoint; {} for a
        checkpoint that does not serve CSP (a de novo-only one)."""
        from autoperi_eval import composition_valid, match_metrics, rms_pair, structural_check

        generator = self._generators.get(checkpoint_id)
        if "csp" not in generator.tasks:
            log.info("checkpoint %s serves no CSP: no held-out metrics", checkpoint_id[:12])
            return {}
        types = [c.atomic_numbers for c in self.held_out]
        preds = generator.generate_types(types, self.steps or None, seed=self.seed)
        pairs = [
            (CrystalArrays.of(p), CrystalArrays.of(g))
            for p, g in zip(preds, self.held_out, strict=True)
        ]
        rms = np.array([rms_pair(pair) for pair in pairs])
        valid = np.array([_valid(p, structural_check, composition_valid) for p in preds])
        gt_valid = np.array([_valid(g, structural_check, composition_valid) for g in self.held_out])
        n = len(self.held_out)
        metrics = match_metrics(np.arange(n), np.zeros(n, int), rms, valid, gt_valid, n)
        k1 = metrics["k1_cdvae"]
        out = {
            "match_rate": k1["match_rate"],
            "rmse": k1["rmse"],
            "n_matched": k1["n_matched"],
            "n": n,
            "valid_rate": float(valid.mean()),
        }
        log.info("checkpoint %s: %s", checkpoint_id[:12], out)
        return out


def _valid(crystal: Crystal, structural_check, composition_valid) -> bool:
    try:
        structure = crystal.to_pymatgen()
    except Exception:
        return False
    return structural_check(structure).valid and composition_valid(crystal.atomic_numbers)
