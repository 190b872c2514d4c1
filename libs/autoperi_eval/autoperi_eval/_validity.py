"""Structural and compositional validity, as CDVAE / DiffCSP define them (SCIENCE 5.1).

Protocol: txie-93/cdvae `scripts/eval_utils.py` (`smact_validity`, `structure_validity`) and
`scripts/compute_metrics.py` (`Crystal.get_composition`, `get_validity`); jiaor17/DiffCSP
`scripts/eval_utils.py` adds the 1e7 cap on oxidation-state combinations. Reimplemented here.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import smact
from pymatgen.core import Element as PmgElement
from pymatgen.core import Structure

#: CDVAE's structural cutoff: no two atoms closer than this (Angstrom).
MIN_DISTANCE = 0.5
#: DiffCSP: a composition with more oxidation-state combinations than this is invalid.
MAX_OX_COMBINATIONS = 1e7


@dataclass(frozen=True)
class StructuralCheck:
    """Result of the structural test: `valid` (ours, self-images included), `valid_cdvae`
    (CDVAE's exact test, which ignores an atom's own periodic images), and the distances."""

    valid: bool
    valid_cdvae: bool
    min_pair_distance: float
    shortest_lattice_vector: float

    @property
    def min_distance(self) -> float:
        """Smallest interatomic distance including self-images (Angstrom)."""
        return min(self.min_pair_distance, self.shortest_lattice_vector)


def shortest_lattice_vector(lattice: np.ndarray) -> float:
    """Length of the shortest non-zero vector of the lattice with rows `lattice` (3, 3).

    Enumerates integer combinations in [-2, 2]^3 of the LLL-reduced basis, which contains the
    shortest vector of a reduced basis in three dimensions.
    """
    from pymatgen.core import Lattice

    reduced = Lattice(lattice).get_lll_reduced_lattice().matrix  # (3, 3)
    ints = np.array(list(itertools.product(range(-2, 3), repeat=3)), dtype=float)  # (125, 3)
    ints = ints[np.abs(ints).sum(axis=1) > 0]
    return float(np.linalg.norm(ints @ reduced, axis=1).min())


def structural_check(structure: Structure, cutoff: float = MIN_DISTANCE) -> StructuralCheck:
    """Minimum periodic distance >= `cutoff` and volume >= 0.1 A^3.

    CDVAE uses pymatgen's minimum-image `distance_matrix` with the diagonal padded, so an atom's
    distance to its own periodic images (the shortest lattice vector) is not tested; `valid`
    tests it too (SCIENCE 5.1 asks for the minimum PBC pairwise distance), `valid_cdvae` does not.
    The two differ only for cells with a lattice vector shorter than `cutoff`.
    """
    dist = np.array(structure.distance_matrix, dtype=float)  # (n, n)
    np.fill_diagonal(dist, np.inf)
    pair_min = float(dist.min()) if len(structure) > 1 else math.inf
    lattice_min = shortest_lattice_vector(structure.lattice.matrix)
    volume_ok = structure.volume >= 0.1
    valid_cdvae = bool(pair_min >= cutoff and volume_ok)
    valid = bool(valid_cdvae and lattice_min >= cutoff)
    return StructuralCheck(valid, valid_cdvae, pair_min, lattice_min)


def reduced_composition(numbers: Sequence[int]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """CDVAE's `get_composition`: elements sorted by atomic number and gcd-reduced counts."""
    values, counts = np.unique(np.asarray(numbers, dtype=np.int64), return_counts=True)
    counts = counts // np.gcd.reduce(counts)
    return tuple(int(v) for v in values), tuple(int(c) for c in counts)


@functools.lru_cache(maxsize=256)
def _smact_element(symbol: str) -> tuple[tuple[int, ...], float | None] | None:
    """(oxidation states, Pauling electronegativity) of an element, None if SMACT lacks it.

    CDVAE ran smact 2.2.1, whose `Element.oxidation_states` is the SMACT 2014 list; smact >= 3
    renamed that list `oxidation_states_smact14` and changed the default to ICSD 2024, so the
    2014 list is read explicitly. A missing list (noble gases) is an empty tuple, not a crash.
    """
    try:
        element = smact.Element(symbol)
    except (KeyError, NameError):
        return None
    states = element.oxidation_states_smact14 or []
    return tuple(int(s) for s in states), element.pauling_eneg


def _pauling_ok(ox_states: Sequence[int], enegs: Sequence[float | None]) -> bool:
    """The Pauling test of smact 2.2.1 with CDVAE's handling of missing electronegativities.

    smact 2.2.1 compared electronegativities of every cation-anion pair (in pair order) and
    returned False on the first pair with the cation at least as electronegative; for an
    opposite-sign pair with a missing value the comparison raised TypeError, which CDVAE caught
    and counted as a pass ("if no electronegativity data, assume it is okay"); a missing value
    in a same-sign pair returned False.
    """
    for (ox1, en1), (ox2, en2) in itertools.combinations(zip(ox_states, enegs, strict=True), 2):
        opposite = (ox1 > 0 and ox2 < 0) or (ox1 < 0 and ox2 > 0)
        if opposite and (en1 is None or en2 is None):
            return True
        if ox1 > 0 and ox2 < 0 and en1 >= en2:
            return False
        if ox1 < 0 and ox2 > 0 and en1 <= en2:
            return False
        if en1 is None or en2 is None:
            return False
    return True


@functools.lru_cache(maxsize=200_000)
def smact_validity(
    elements: tuple[int, ...],
    counts: tuple[int, ...],
    use_pauling_test: bool = True,
    include_alloys: bool = True,
) -> bool:
    """CDVAE / DiffCSP compositional validity of a gcd-reduced composition.

    `elements` are atomic numbers sorted ascending, `counts` the reduced counts (see
    `reduced_composition`). One element: valid. All elements in `smact.metals` (alloys): valid.
    Otherwise every combination of oxidation states (SMACT 2014 list) is tried, invalid if there
    are more than 1e7 combinations; valid if one is charge neutral at exactly these counts
    (`smact.neutral_ratios` with threshold = max count; smact >= 3 returns a list) and passes the
    Pauling test. An element unknown to SMACT makes the composition invalid (CDVAE would crash).
    CDVAE's defaults (Pauling test on, alloys included) are the protocol.
    """
    symbols = [PmgElement.from_Z(z).symbol for z in elements]
    if len(set(symbols)) == 1:
        return True
    if include_alloys and all(s in smact.metals for s in symbols):
        return True
    data = [_smact_element(s) for s in symbols]
    if any(d is None for d in data):
        return False
    ox_lists = [d[0] for d in data]
    enegs = [d[1] for d in data]
    if math.prod(len(ox) for ox in ox_lists) > MAX_OX_COMBINATIONS:
        return False
    stoichs = [(c,) for c in counts]
    threshold = max(counts)
    for ox_states in itertools.product(*ox_lists):
        if not smact.neutral_ratios(ox_states, stoichs=stoichs, threshold=threshold):
            continue
        if not use_pauling_test or _pauling_ok(ox_states, enegs):
            return True
    return False


def composition_valid(numbers: Sequence[int]) -> bool:
    """SMACT validity of the composition given by a list of atomic numbers (any order)."""
    if len(numbers) == 0 or not all(1 <= int(z) <= 118 for z in numbers):
        return False
    elements, counts = reduced_composition(numbers)
    return smact_validity(elements, counts)
