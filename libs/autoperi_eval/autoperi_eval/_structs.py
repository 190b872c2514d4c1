"""Sample records, building rules (SCIENCE 5.1) and the compact form structures travel in.

Structures cross process boundaries as `autoperi_data.CrystalArrays` (lattice rows (3, 3), atomic
numbers (n,), fractional coordinates (n, 3)), which pickle much smaller than a pymatgen `Structure`,
and they are keyed in the on-disk cache by `structure_key`, a sha256 of a canonical text
description.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from autoperi_data import CrystalArrays
from pymatgen.core import Lattice, Structure

#: CDVAE's building rule: a cell below this volume (A^3) is "not constructed".
MIN_VOLUME = 0.1


@dataclass
class SampleRecord:
    """One generated (or reference) crystal as the evaluator sees it.

    `structure` is None when the crystal could not be constructed; `reason` then says why
    (CDVAE's `invalid_reason` vocabulary plus `parse_error`). `numbers` keeps the atomic numbers
    even then, so that compositional validity can still be judged, as CDVAE does.
    """

    index: int
    id: str
    structure: Structure | None
    numbers: np.ndarray  # (n_atoms,) int
    reason: str = ""
    gt_index: int | None = None
    gt_id: str | None = None
    properties: Mapping[str, float] = field(default_factory=dict)

    @property
    def constructed(self) -> bool:
        """True when a pymatgen Structure exists and passed CDVAE's building rules."""
        return self.structure is not None and not self.reason


def structure_key(structure: Structure | CrystalArrays) -> str:
    """sha256 of a canonical description: invariant to site order and to periodic image shifts.

    Sites are sorted by (Z, x, y, z) with coordinates wrapped into [0, 1) and written to 1e-8;
    the lattice is written to 1e-8 Angstrom. Two cells of the same crystal in different bases get
    different keys (the cache then simply computes twice).
    """
    arrays = structure if isinstance(structure, tuple) else CrystalArrays.from_pymatgen(structure)
    lattice, numbers, frac = arrays
    wrapped = np.round(np.mod(frac, 1.0), 8)
    wrapped[wrapped >= 1.0] = 0.0
    wrapped = wrapped + 0.0  # turns -0.0 into 0.0
    order = np.lexsort((wrapped[:, 2], wrapped[:, 1], wrapped[:, 0], numbers))
    parts = ["L", *(f"{v:.8f}" for v in np.asarray(lattice).ravel())]
    for i in order:
        parts.append(f"{int(numbers[i])}:" + ",".join(f"{v:.8f}" for v in wrapped[i]))
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def build_record(
    index: int,
    lattice: np.ndarray,
    numbers: np.ndarray,
    frac: np.ndarray,
    *,
    id: str = "",
    properties: Mapping[str, float] | None = None,
) -> SampleRecord:
    """Apply CDVAE's building rules to raw arrays (lattice rows (3, 3), numbers (n,), frac (n, 3)).

    Not constructed: a non-finite value (`nan_value`), pymatgen raising
    (`construction_raises_exception`), or a volume below 0.1 A^3 (`unrealistically_small_lattice`).
    CDVAE's `non_positive_lattice` cannot occur for a lattice matrix (lengths are norms); it is
    checked where lengths are given (`build_from_parameters`).
    """
    numbers = np.asarray(numbers).astype(np.int64).reshape(-1)
    base = SampleRecord(index, id, None, numbers, properties=dict(properties or {}))
    lattice, frac = np.asarray(lattice, dtype=float), np.asarray(frac, dtype=float)
    if not (np.isfinite(lattice).all() and np.isfinite(frac).all()):
        base.reason = "nan_value"
        return base
    try:
        structure = Structure(Lattice(lattice), [int(z) for z in numbers], frac)
    except Exception:
        base.reason = "construction_raises_exception"
        return base
    return finish_record(base, structure)


def build_from_parameters(
    index: int,
    lengths: np.ndarray,
    angles: np.ndarray,
    numbers: np.ndarray,
    frac: np.ndarray,
    *,
    id: str = "",
) -> SampleRecord:
    """CDVAE's `Crystal.get_structure`: lattice from (a, b, c) and (alpha, beta, gamma), degrees."""
    numbers = np.asarray(numbers).astype(np.int64).reshape(-1)
    base = SampleRecord(index, id, None, numbers)
    values = np.concatenate([np.ravel(lengths), np.ravel(angles), np.ravel(frac)]).astype(float)
    if not np.isfinite(values).all():
        base.reason = "nan_value"
        return base
    if min(np.ravel(lengths)) < 0:
        base.reason = "non_positive_lattice"
        return base
    try:
        lattice = Lattice.from_parameters(*np.ravel(lengths), *np.ravel(angles))
        structure = Structure(lattice, [int(z) for z in numbers], frac)
    except Exception:
        base.reason = "construction_raises_exception"
        return base
    return finish_record(base, structure)


def finish_record(record: SampleRecord, structure: Structure) -> SampleRecord:
    """Attach a built structure, applying the volume rule (volume < 0.1 A^3: not constructed)."""
    record.structure = structure
    volume = structure.volume
    if not math.isfinite(volume) or volume < MIN_VOLUME:
        record.reason = "unrealistically_small_lattice"
    return record
