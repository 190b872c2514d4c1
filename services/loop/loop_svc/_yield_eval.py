"""The S.U.N. yield of a checkpoint: draw fresh samples in this process, relax and score them on
the scorer, and compute their S.U.N. indicators (`_yield`).

Draw: `evaluation.yield_samples` samples of the loop's task from `autoperi_model.Generator`:
de novo on the loop's chemical space, or CSP with target `i % T` for sample i; `evaluation.steps`
integration steps (0: the checkpoint's); seed `yield_seed(spec)` for every checkpoint of the
loop, so two checkpoints' draws are paired by sample index. Scoring: relaxed (FIRE with the cell
filter, the hull reference's bounded protocol), E_hull against the scorer's hull; a sample the
scorer returns no relaxed crystal for is compared as sampled (counted in `num_unrelaxed`).
Validity (the scorer's structural and SMACT checks of the sample as generated, `autoperi eval`'s):
an invalid sample is not S.U.N. and takes no part in the uniqueness comparisons, as in `autoperi
eval`. Novelty: against `reference()`, the seed dataset commit's crystals.

Result (JSON, as the journal caches it per checkpoint): {"n", "seed", "yield", "num_sun",
"num_scored", "num_valid", "num_unrelaxed", "valid", "stable", "unique", "novel", "sun" (each a
'0'/'1' string of
length n, `_yield.bits`), "e_above_hull" ([n] eV/atom or None), "file" (the scored crystals, a
`CrystalBatch` of n messages under the loop folder; an unscored sample is kept as sampled)}.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from autoperi.crystal.v1 import crystal_pb2
from xtal import Crystal, convert

from loop_svc._candidates import write_atomic
from loop_svc._clients import Scorer
from loop_svc._spec import LoopSpec
from loop_svc._yield import FLAGS, bits, sun_indicators, yield_of

log = logging.getLogger("loop_svc.yield")
YIELD_SEED_OFFSET = 999_999  # never a round's sampling seed (seed + 1000 r + k, k < 1000)


def yield_seed(spec: LoopSpec) -> int:
    """The seed of every yield draw of the loop."""
    return spec.seed + YIELD_SEED_OFFSET


def draw(generator: Any, spec: LoopSpec) -> list[Crystal]:
    """`yield_samples` fresh samples of the loop's task from an autoperi_model.Generator."""
    n, steps, seed = spec.evaluation.yield_samples, spec.evaluation.steps or None, yield_seed(spec)
    space = spec.chemical_space
    if space is None:
        from autoperi_model import parse_composition

        cells = [parse_composition(t) for t in spec.targets]
        return generator.generate_types([cells[i % len(cells)] for i in range(n)], steps, seed=seed)
    elements, required = space.atomic_numbers()
    atoms = (space.min_atoms, space.max_atoms)
    return generator.generate_dng(
        n, steps, seed=seed, elements=elements, atoms=atoms, required=required
    )


def relaxed_crystal(crystal: Crystal, scores: Any) -> Crystal | None:
    """The scored structure of `crystal` (its relaxed cell from a scorer_svc.Scores), the crystal
    itself when the scorer sent no relaxed cell, None when it could not be scored."""
    if scores.error is not None:
        return None
    if scores.lattice is None or scores.frac_coords is None:
        return crystal
    return crystal.replace(lattice=scores.lattice, frac_coords=scores.frac_coords)


class YieldEvaluator:
    """S.U.N. indicators of checkpoints' fresh samples (see the module notes)."""

    def __init__(
        self,
        spec: LoopSpec,
        scorer: Scorer,
        generator: Callable[[str], Any],
        reference: Callable[[], Sequence[Crystal]],
        folder: Path,
    ) -> None:
        """`generator(checkpoint_id)`: its autoperi_model.Generator; `reference()`: the novelty
        reference crystals; the scored crystals are written under `folder`."""
        self.spec, self.scorer, self.generator = spec, scorer, generator
        self.reference, self.folder = reference, Path(folder)

    def evaluate(self, checkpoint_id: str) -> dict[str, Any]:
        """The checkpoint's yield record (the module notes' JSON)."""
        samples = draw(self.generator(checkpoint_id), self.spec)
        scores = self.scorer.score(samples, None, "", relax=True)
        scored = [relaxed_crystal(c, s) for c, s in zip(samples, scores, strict=True)]
        e_hull = [None if s.error is not None else s.e_above_hull for s in scores]
        valid = np.array(
            [s.error is None and s.structure_valid and s.composition_valid for s in scores]
        )
        threshold = self.spec.evaluation.stable_e_above_hull
        candidates = [c if ok else None for c, ok in zip(scored, valid, strict=True)]
        flags = {"valid": valid, **sun_indicators(candidates, e_hull, self.reference(), threshold)}
        path = self._write(checkpoint_id, [s or c for s, c in zip(scored, samples, strict=True)])
        record = {
            "n": len(samples),
            "seed": yield_seed(self.spec),
            "yield": yield_of(flags["sun"]),
            "num_sun": int(flags["sun"].sum()),
            "num_scored": sum(s is not None for s in scored),
            "num_valid": int(valid.sum()),
            "num_unrelaxed": sum(s.error is None and s.lattice is None for s in scores),
            **{name: bits(flags[name]) for name in ("valid", *FLAGS, "sun")},
            "e_above_hull": [None if e is None else round(float(e), 6) for e in e_hull],
            "file": str(path.relative_to(self.folder.parent)),
        }
        log.info("checkpoint %s: S.U.N. yield %.1f", checkpoint_id[:12], record["yield"])
        return record

    def _write(self, checkpoint_id: str, crystals: Sequence[Crystal]) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{checkpoint_id}.pb"
        batch = crystal_pb2.CrystalBatch(crystals=[convert.to_proto(c) for c in crystals])
        write_atomic(path, batch.SerializeToString())
        return path


def read_scored(loop_dir: Path, record: dict[str, Any]) -> list[Crystal]:
    """The scored crystals of a yield record (in sample order)."""
    data = (Path(loop_dir) / record["file"]).read_bytes()
    return [convert.from_proto(m) for m in crystal_pb2.CrystalBatch.FromString(data).crystals]
