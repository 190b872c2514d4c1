"""Which scored candidates an active-learning round keeps (loop.v1.SelectionCriteria).

Filters run in a fixed order, each counted: scoring errors, validity, novelty, energy above the
hull, duplicates (content hash), then a greedy diversity filter over structure fingerprints in
order of stability, then the cap. Every dropped candidate gets the name of the filter that
dropped it, so a round report can say why each one was not kept.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

FingerprintFn = Callable[[Sequence[int]], np.ndarray]  # candidate indices -> (k, d) rows


@dataclass(frozen=True)
class SelectionCriteria:
    """What to keep; mirrors loop.v1.SelectionCriteria (None / 0 mean "no limit")."""

    require_valid: bool = True
    require_novel: bool = True
    max_e_above_hull: float | None = None
    max_selected: int = 0
    min_fingerprint_distance: float = 0.0


@dataclass(frozen=True)
class CandidateScore:
    """The scorer's verdict on one candidate (the fields of scorer.v1.ScoreResult we use)."""

    content_hash: str
    energy_per_atom: float | None = None
    e_above_hull: float | None = None
    structure_valid: bool = False
    composition_valid: bool = False
    novel: bool | None = None
    error: str = ""


@dataclass(frozen=True)
class Selection:
    """Kept candidate indices (most stable first), survivors after each filter, and the
    filter that dropped each other candidate."""

    selected: tuple[int, ...]
    counts: dict[str, int]
    dropped: dict[int, str] = field(default_factory=dict)


def _rank_key(score: CandidateScore) -> tuple[float, float]:
    """Lower is kept first: energy above hull, then energy per atom (unknown last)."""
    inf = float("inf")
    e_hull = inf if score.e_above_hull is None else score.e_above_hull
    energy = inf if score.energy_per_atom is None else score.energy_per_atom
    return (e_hull, energy)


def _filters(criteria: SelectionCriteria) -> list[tuple[str, Callable[[CandidateScore], bool]]]:
    """(name, keep?) of the per-candidate filters that `criteria` switches on, in order."""
    filters = [("scored", lambda s: not s.error)]
    if criteria.require_valid:
        filters.append(("valid", lambda s: s.structure_valid and s.composition_valid))
    if criteria.require_novel:
        filters.append(("novel", lambda s: s.novel is True))
    limit = criteria.max_e_above_hull
    if limit is not None:
        filters.append(("stable", lambda s: s.e_above_hull is not None and s.e_above_hull <= limit))
    return filters


def select_candidates(
    scores: Sequence[CandidateScore],
    criteria: SelectionCriteria,
    fingerprints: FingerprintFn | None = None,
) -> Selection:
    """Apply `criteria` to `scores` (one per candidate, in candidate order).

    `fingerprints(indices) -> (k, d)` is called once, for the candidates that reach the
    diversity filter, and only when `criteria.min_fingerprint_distance > 0` (it must then be
    given). Rows with NaN (no fingerprint) are dropped as "fingerprint".
    """
    alive = list(range(len(scores)))
    counts, dropped = {"generated": len(alive)}, {}
    for name, keep in _filters(criteria):
        alive = _apply(alive, lambda i, keep=keep: keep(scores[i]), name, dropped)
        counts[name] = len(alive)
    alive.sort(key=lambda i: _rank_key(scores[i]))
    alive = _apply(alive, _first_of_each_hash(scores), "unique", dropped)
    counts["unique"] = len(alive)
    if criteria.min_fingerprint_distance > 0:
        if fingerprints is None:
            raise ValueError("min_fingerprint_distance needs a fingerprint function")
        alive = _diverse(alive, fingerprints, criteria.min_fingerprint_distance, dropped)
        counts["diverse"] = len(alive)
    if criteria.max_selected:
        for i in alive[criteria.max_selected :]:
            dropped[i] = "max_selected"
        alive = alive[: criteria.max_selected]
    counts["selected"] = len(alive)
    return Selection(tuple(alive), counts, dropped)


def _apply(
    alive: list[int], keep: Callable[[int], bool], name: str, dropped: dict[int, str]
) -> list[int]:
    kept = []
    for i in alive:
        if keep(i):
            kept.append(i)
        else:
            dropped[i] = name
    return kept


def _first_of_each_hash(scores: Sequence[CandidateScore]) -> Callable[[int], bool]:
    """A predicate true for the first candidate asked about with each content hash."""
    seen: set[str] = set()

    def first(i: int) -> bool:
        fresh = scores[i].content_hash not in seen
        seen.add(scores[i].content_hash)
        return fresh

    return first


def _diverse(
    ranked: list[int], fingerprints: FingerprintFn, min_distance: float, dropped: dict[int, str]
) -> list[int]:
    """Greedy: keep a candidate only if it is at least `min_distance` from every kept one."""
    rows = np.asarray(fingerprints(ranked), dtype=float)
    kept: list[int] = []
    kept_rows: list[np.ndarray] = []
    for i, row in zip(ranked, rows, strict=True):
        if not np.isfinite(row).all():
            dropped[i] = "fingerprint"
            continue
        if kept_rows and np.linalg.norm(np.stack(kept_rows) - row, axis=1).min() < min_distance:
            dropped[i] = "diverse"
            continue
        kept.append(i)
        kept_rows.append(row)
    return kept
