"""`autoperi screen`: keep the best of each group of candidates, judged by CHGNet single points.

Candidates are read in file order and split into consecutive groups of `best_of` (the last may
be smaller). Each is scored once (CHGNet single point, no relaxation) against the scorer's hull
reference. From each group the kept candidate is the one lowest above the hull or, with a
formation-energy target, the one whose formation energy per atom lies closest to it. A candidate
with a scoring error, an invalid structure or no value of the key is never kept, and a group
where none qualifies keeps nothing (counted). This is rejection sampling with the potential as the
critic (docs/SCIENCE.md 4.10): `best_of` single points per kept crystal.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from xtal import Crystal, write_samples

from scorer_svc._model import Scores


@dataclass(frozen=True)
class ScreenPlan:
    """What to keep: one of every `best_of` candidates, by E_hull or by |E_form - target|."""

    best_of: int
    target_formation_energy: float | None = None

    def __post_init__(self) -> None:
        if self.best_of < 1:
            raise ValueError(f"best_of must be at least 1, not {self.best_of}")

    @property
    def key_name(self) -> str:
        if self.target_formation_energy is None:
            return "e_above_hull"
        return "formation_energy_per_atom"

    def key(self, result: Scores) -> float:
        """The value to minimise (inf: never keep)."""
        value = getattr(result, self.key_name)
        if result.error is not None or not result.structure_valid or value is None:
            return math.inf
        if not math.isfinite(value):
            return math.inf
        if self.target_formation_energy is None:
            return value
        return abs(value - self.target_formation_energy)

    def choose(self, results: Sequence[Scores]) -> list[int]:
        """Indices into `results` of the kept candidate of each group that has one."""
        kept = []
        for start in range(0, len(results), self.best_of):
            group = range(start, min(start + self.best_of, len(results)))
            best = min(group, key=lambda i: self.key(results[i]))
            if math.isfinite(self.key(results[best])):
                kept.append(best)
        return kept


def write_screened(
    crystals: Sequence[Crystal],
    results: Sequence[Scores],
    plan: ScreenPlan,
    kept: Sequence[int],
    out: Path,
) -> dict:
    """Write the `kept` crystals (`plan.choose(results)`) as a sample directory
    (`xtal.write_samples`; each carries its single-point energy, E_hull, formation energy and
    candidate index as properties) and `screen.json` (the plan and counts) in `out`; return the
    counts."""
    chosen = [crystals[i] for i in kept]
    extra = [_properties(i, results[i]) for i in kept]
    write_samples(chosen, [c.formula for c in chosen], out, "screened", extra)
    groups = math.ceil(len(results) / plan.best_of)
    summary = {
        "best_of": plan.best_of,
        "key": plan.key_name,
        "target_formation_energy": plan.target_formation_energy,
        "candidates": len(results),
        "groups": groups,
        "kept": len(kept),
        "groups_without_candidate": groups - len(kept),
        "errors": sum(r.error is not None for r in results),
    }
    (out / "screen.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def _properties(index: int, result: Scores) -> dict[str, float]:
    values = {
        "candidate": float(index),
        "energy_per_atom_sp": result.energy_per_atom,
        "e_above_hull_sp": result.e_above_hull,
        "formation_energy_per_atom_sp": result.formation_energy_per_atom,
    }
    return {k: float(v) for k, v in values.items() if v is not None}
