"""Space groups of samples with spglib (via pymatgen's SpacegroupAnalyzer), symprec 0.1 A.

Symmetry realism (SCIENCE 5.5): the distribution of space-group numbers and the share in P1.
Computed in worker processes (spglib is native code) and cached per structure.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
from autoperi_data import CrystalArrays

from ._cache import Cache, Value
from ._parallel import Pool, ProgressFn, pool_compute
from ._structs import structure_key

SYMPREC = 0.1


def space_group_arrays(payload: CrystalArrays, symprec: float = SYMPREC) -> Value:
    """Worker: {"number": () int}, 0 when spglib finds no space group."""
    import warnings

    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    structure = payload.to_pymatgen()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            number = SpacegroupAnalyzer(structure, symprec=symprec).get_space_group_number()
        except Exception:
            number = 0
    return {"number": np.array(int(number or 0))}


def compute_space_groups(
    payloads: Sequence[CrystalArrays],
    cache: Cache,
    pool: Pool,
    *,
    label: str,
    symprec: float = SYMPREC,
    progress: ProgressFn | None = None,
) -> np.ndarray:
    """(n,) space-group numbers (0 = not determined)."""
    import spglib

    namespace = f"spg/symprec-{symprec}/spglib-{spglib.__version__}"
    keys = [structure_key(p) for p in payloads]
    fn = functools.partial(space_group_arrays, symprec=symprec)
    compute = pool_compute(pool, fn, label, progress, chunk_size=32)
    values = cache.cached_compute(namespace, label, keys, payloads, compute)
    return np.array([int(v["number"]) for v in values], dtype=np.int64)


def p1_share(numbers: np.ndarray) -> float:
    """Share of structures in space group P1 (number 1) among those with a determined group."""
    known = numbers[numbers > 0]
    return float((known == 1).mean()) if len(known) else float("nan")
