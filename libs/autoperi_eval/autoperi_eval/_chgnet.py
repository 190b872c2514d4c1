"""Energies, relaxations and crystal embeddings from the pretrained CHGNet (the scorer).

CHGNet (loaded by `autoperi_potential.load_chgnet`, as the scorer service loads it) runs only in
worker processes of its own pool, one model per worker, one torch thread each: its peak memory
(about 2 GB) is not returned to the operating system, so the evaluating process stays small.
- single point: `predict_structure(task="e", return_crystal_feas=True)` -> energy per atom (eV)
  and the 64-d crystal feature (the pooled atom features before the energy read-out), which is the
  embedding for the Frechet distance;
- relaxation: `StructOptimizer` (FIRE, FrechetCellFilter on the cell) bounded by `steps` and
  `fmax`, returning the final energy per atom and the number of steps taken.
Structures with more than `MAX_ATOMS` atoms or under `MIN_VOLUME_PER_ATOM` A^3 per atom are not
scored (NaN), which bounds memory on pathological samples.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from autoperi_data import CrystalArrays
from autoperi_potential import FEATURE_DIM, MODEL_NAME, load_chgnet, loaded_model, scorable

from ._cache import Cache, Value
from ._parallel import Pool, ProgressFn
from ._structs import structure_key


@dataclass(frozen=True)
class RelaxSettings:
    """Bounded relaxation: at most `steps` optimiser steps, stop when forces < `fmax` (eV/A)."""

    steps: int = 100
    fmax: float = 0.1


def _scorable(arrays: CrystalArrays) -> bool:
    return scorable(arrays.lattice, arrays.num_atoms)


def single_point_batch(batch: list[CrystalArrays]) -> list[Value]:
    """Worker: [{"e": () eV/atom, "fea": (64,)}] for a batch; NaN for unscorable structures."""
    empty = {"e": np.array(np.nan), "fea": np.full(FEATURE_DIM, np.nan)}
    keep = [i for i, p in enumerate(batch) if _scorable(p)]
    out = [dict(empty) for _ in batch]
    if not keep:
        return out
    structures = [batch[i].to_pymatgen() for i in keep]
    with contextlib.redirect_stdout(io.StringIO()):
        preds = loaded_model().predict_structure(
            structures, task="e", return_crystal_feas=True, batch_size=len(structures)
        )
    preds = [preds] if isinstance(preds, dict) else preds  # one structure: a bare dict
    for i, pred in zip(keep, preds, strict=True):
        out[i] = {"e": np.array(float(pred["e"])), "fea": np.asarray(pred["crystal_fea"], float)}
    return out


def relax_one(item: tuple[CrystalArrays, RelaxSettings]) -> Value:
    """Worker: {"e_initial", "e_final" (eV/atom), "steps"} of a bounded relaxation."""
    payload, settings = item
    if not _scorable(payload):
        return {"e_initial": np.array(np.nan), "e_final": np.array(np.nan), "steps": np.array(-1)}
    from chgnet.model import StructOptimizer

    n = len(payload[1])
    with contextlib.redirect_stdout(io.StringIO()):  # CHGNet prints on construction
        optimizer = StructOptimizer(
            model=loaded_model(), optimizer_class="FIRE", on_isolated_atoms="ignore"
        )
        result = optimizer.relax(
            payload.to_pymatgen(),
            fmax=settings.fmax,
            steps=settings.steps,
            verbose=False,
            assign_magmoms=False,
        )
    energies = result["trajectory"].energies  # initial, one per step, and the final state again
    return {
        "e_initial": np.array(float(energies[0]) / n),
        "e_final": np.array(float(energies[-1]) / n),
        "steps": np.array(max(len(energies) - 2, 0)),
    }


def _namespace(kind: str) -> str:
    import chgnet

    return f"chgnet-{kind}/pkg-{chgnet.__version__}/model-{MODEL_NAME}"


def relax_namespace(settings: RelaxSettings) -> str:
    """The cache namespace of bounded relaxations with `settings` (values: e_initial, e_final,
    steps)."""
    return f"{_namespace('relax')}/fire-steps{settings.steps}-fmax{settings.fmax}"


class Scorer:
    """The CHGNet pool: single-point energies + embeddings, and bounded relaxations, cached."""

    def __init__(self, cache: Cache, n_workers: int | None, batch_size: int = 32) -> None:
        self.cache = cache
        self.batch_size = batch_size
        workers = n_workers or min(2, os.cpu_count() or 1)
        self.pool = Pool(workers, initializer=load_chgnet, inline_below=0)

    def close(self) -> None:
        """Stop the CHGNet workers (and free their memory)."""
        self.pool.close()

    def single_point(
        self, payloads: Sequence[CrystalArrays], label: str, progress: ProgressFn | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(energy per atom (n,), crystal features (n, 64)); NaN where not scorable."""
        size = self.batch_size

        def compute(items: list[CrystalArrays], before: int, total: int) -> list[Value]:
            batches = [items[s : s + size] for s in range(0, len(items), size)]

            def relay(_stage: str, n: int, _total: int) -> None:
                if progress is not None:
                    progress(label, before + min(n * size, len(items)), total)

            done = self.pool.map(single_point_batch, batches, chunk_size=1, progress=relay)
            return [value for batch in done for value in batch]

        keys = [structure_key(p) for p in payloads]
        values = self.cache.cached_compute(_namespace("sp"), label, keys, payloads, compute, 512)
        if not values:
            return np.zeros(0), np.zeros((0, FEATURE_DIM))
        return np.array([float(v["e"]) for v in values]), np.stack([v["fea"] for v in values])

    def relax(
        self,
        payloads: Sequence[CrystalArrays],
        settings: RelaxSettings,
        label: str,
        progress: ProgressFn | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(relaxed energy per atom (n,), steps taken (n,)); NaN / -1 where not scorable."""
        namespace = relax_namespace(settings)
        keys = [structure_key(p) for p in payloads]
        items = [(p, settings) for p in payloads]

        def compute(todo: list, before: int, total: int) -> list[Value]:
            def relay(_stage: str, n: int, _total: int) -> None:
                if progress is not None:
                    progress(label, before + n, total)

            return self.pool.map(relax_one, todo, chunk_size=1, progress=relay)

        values = self.cache.cached_compute(namespace, label, keys, items, compute, 64)
        energies = np.array([float(v["e_final"]) for v in values])
        return energies, np.array([int(v["steps"]) for v in values])
