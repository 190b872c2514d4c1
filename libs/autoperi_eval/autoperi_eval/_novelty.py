"""Uniqueness and novelty with pymatgen's `StructureMatcher()` defaults (SCIENCE 5.5).

Two structures can only match if their reduced formulas agree, so comparisons are bucketed by
reduced formula. Uniqueness: a sample is unique if no earlier sample (input order) matches it;
uniqueness rate = unique / n. Novelty: a sample is novel if no reference structure (training +
validation data) of the same reduced formula matches it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from autoperi_data import CrystalArrays
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Structure

from ._parallel import Pool, ProgressFn


def _formula(payload: CrystalArrays) -> str:
    from pymatgen.core import Composition, Element

    values, counts = np.unique(payload[1], return_counts=True)
    amounts = {Element.from_Z(int(z)): int(c) for z, c in zip(values, counts, strict=True)}
    return Composition(amounts).reduced_formula


def _any_match(item: tuple[CrystalArrays, list[CrystalArrays]]) -> bool:
    """Worker: does the first structure match any of the others (StructureMatcher defaults)?"""
    import warnings

    target, others = item
    if not others:
        return False
    matcher = StructureMatcher()
    structure = target.to_pymatgen()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for other in others:
            if _safe_fit(matcher, structure, other.to_pymatgen()):
                return True
    return False


def _first_of_group(group: list[CrystalArrays]) -> list[bool]:
    """Worker: for a same-formula group, True for members that match no earlier member."""
    import warnings

    matcher = StructureMatcher()
    structures = [p.to_pymatgen() for p in group]
    representatives: list = []
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for structure in structures:
            seen = any(_safe_fit(matcher, structure, rep) for rep in representatives)
            if not seen:
                representatives.append(structure)
            out.append(not seen)
    return out


def _safe_fit(matcher: StructureMatcher, a: Structure, b: Structure) -> bool:
    try:
        return bool(matcher.fit(a, b))
    except Exception:
        return False


def uniqueness(
    payloads: Sequence[CrystalArrays], pool: Pool, progress: ProgressFn | None = None
) -> np.ndarray:
    """(n,) True for samples that match no earlier sample."""
    groups: dict[str, list[int]] = {}
    for i, p in enumerate(payloads):
        groups.setdefault(_formula(p), []).append(i)
    members = list(groups.values())
    flags = pool.map(
        _first_of_group,
        [[payloads[i] for i in m] for m in members],
        chunk_size=4,
        stage="uniqueness",
        progress=progress,
    )
    out = np.zeros(len(payloads), dtype=bool)
    for member, flag in zip(members, flags, strict=True):
        out[member] = flag
    return out


def novelty(
    payloads: Sequence[CrystalArrays],
    reference: Sequence[CrystalArrays],
    pool: Pool,
    progress: ProgressFn | None = None,
) -> np.ndarray:
    """(n,) True for samples that match no reference structure."""
    by_formula: dict[str, list[CrystalArrays]] = {}
    for p in reference:
        by_formula.setdefault(_formula(p), []).append(p)
    items = [(p, by_formula.get(_formula(p), [])) for p in payloads]
    matched = pool.map(_any_match, items, chunk_size=4, stage="novelty", progress=progress)
    return ~np.asarray(matched, dtype=bool)
