"""Validation codes, limits and the periodic minimum distance (against brute force)."""

import itertools
import math

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from xtal import Crystal, CrystalError, ValidationLimits
from xtal._validate import find_overlap


def cubic(frac, numbers=None, a=4.0) -> Crystal:
    frac = np.asarray(frac, dtype=float)
    return Crystal(np.eye(3) * a, frac, numbers if numbers is not None else [6] * len(frac))


@pytest.mark.parametrize(
    ("crystal", "code", "fragment"),
    [
        (cubic([[np.nan, 0, 0]]), "non_finite", "atom 0"),
        (Crystal(np.diag([4.0, np.inf, 4.0]), [[0, 0, 0]], [6]), "non_finite", "lattice"),
        (cubic([[0, 0, 0]], [0]), "unknown_element", "atomic number 0"),
        (cubic([[0, 0, 0]], [119]), "unknown_element", "119"),
        (cubic(np.zeros((0, 3)), []), "no_atoms", "no atoms"),
        (cubic(np.random.default_rng(0).random((1001, 3)), a=40), "too_many_atoms", "1001 atoms"),
        (Crystal(np.diag([4.0, 4.0, 0.0]), [[0, 0, 0]], [6]), "small_volume", "cell volume 0"),
        (Crystal(np.diag([1.0, 1.0, 0.05]), [[0, 0, 0]], [6]), "small_volume", "minimum 0.1"),
        (cubic([[0, 0, 0], [0.05, 0, 0]]), "overlapping_atoms", "atoms 0 and 1 are 0.2 A"),
        (cubic([[0, 0, 0], [0, 0, 0]]), "overlapping_atoms", "atoms 0 and 1 are 0 A"),
        (Crystal(np.diag([0.3, 10, 10]), [[0, 0, 0]], [6]), "overlapping_atoms", "own periodic"),
        (cubic([[1e308, 0, 0]]), "out_of_range", "coordinate out of range: atom 0"),
        (cubic([[0, -1001, 0]]), "out_of_range", "at most 1000; never wrapped"),
        (Crystal(np.eye(3) * 1e6, [[0, 0, 0]], [6]), "out_of_range", "1e+06 A long"),
        (
            Crystal([[1e308, 1e308, 0], [0, 4, 0], [0, 0, 4]], [[0, 0, 0]], [6]),
            "out_of_range",
            "1.414e+308 A long",
        ),  # hypot: no overflow to inf
        (Crystal(np.eye(3) * 900, [[0, 0, 0]], [6]), "out_of_range", "volume per atom 7.29e+08"),
    ],
)
def test_each_problem_has_its_code(crystal, code, fragment):
    with pytest.raises(CrystalError) as info:
        crystal.validate()
    assert info.value.code == code
    assert fragment in info.value.message


def test_per_atom_volume_bound_follows_from_min_distance():
    limits = ValidationLimits()
    assert limits.min_volume_per_atom == pytest.approx(0.5**3 / math.sqrt(2))
    dense = cubic(np.random.default_rng(1).random((20, 3)), a=1.0)  # 0.05 A^3 per atom
    with pytest.raises(CrystalError, match="densest packing"):
        dense.validate()
    # an fcc arrangement exactly at the bound is valid: the bound is the densest packing
    d = 0.5 * 1.0001
    fcc = Crystal(
        np.eye(3) * d * math.sqrt(2),
        [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
        [1] * 4,
    )
    assert fcc.validate() is fcc


def test_limits_are_configurable_and_checked():
    crystal = cubic([[0, 0, 0], [0.1, 0, 0]])
    assert crystal.validate(ValidationLimits(min_distance=0.3)) is crystal
    assert crystal.validate(ValidationLimits(min_distance=0.0)) is crystal
    with pytest.raises(CrystalError, match="too_many_atoms"):
        crystal.validate(ValidationLimits(max_atoms=1, min_distance=0.0))
    with pytest.raises(ValueError):
        ValidationLimits(max_atoms=0)
    with pytest.raises(ValueError):
        ValidationLimits(min_distance=float("nan"))
    for name in ("max_length", "max_volume_per_atom", "max_frac_coord"):
        for value in (0.0, float("inf"), float("nan")):
            with pytest.raises(ValueError, match=name):
                ValidationLimits(**{name: value})


def test_upper_bounds_are_configurable():
    sparse = Crystal(np.eye(3) * 20.0, [[0, 0, 0], [0.5, 0.5, 0.5]], [6, 6])  # 4000 A^3 per atom
    with pytest.raises(CrystalError, match="out_of_range: cell out of range: volume per atom"):
        sparse.validate()
    assert sparse.validate(ValidationLimits(max_volume_per_atom=5000.0)) is sparse
    with pytest.raises(CrystalError, match="beyond the limit of 10 A"):
        sparse.validate(ValidationLimits(max_length=10.0, max_volume_per_atom=5000.0))
    unwrapped = sparse.replace(frac_coords=[[0, 0, 0], [5.5, 0.5, 0.5]])
    with pytest.raises(CrystalError, match="at most 5; never wrapped"):
        unwrapped.validate(ValidationLimits(max_volume_per_atom=5000.0, max_frac_coord=5.0))


def test_left_handed_cells_are_valid():
    crystal = Crystal(np.diag([4.0, 4.0, -4.0]), [[0, 0, 0]], [6])
    assert crystal.volume == pytest.approx(64.0)
    assert crystal.validate() is crystal


def _brute_min_distance(lattice, frac):
    volume = abs(np.linalg.det(lattice))
    reach = np.linalg.norm(lattice, axis=1).min()
    heights = [
        volume / np.linalg.norm(np.cross(lattice[(k + 1) % 3], lattice[(k + 2) % 3]))
        for k in range(3)
    ]
    ranges = [range(-math.ceil(reach / h) - 1, math.ceil(reach / h) + 2) for h in heights]
    shifts = np.array(list(itertools.product(*ranges)), dtype=float)  # (s, 3)
    best = math.inf
    for i, j in itertools.combinations_with_replacement(range(len(frac)), 2):
        delta = frac[j] - frac[i]
        distances = np.linalg.norm((delta - np.rint(delta) + shifts) @ lattice, axis=1)
        if i == j:
            distances = distances[np.any(shifts != 0, axis=1)]
        best = min(best, distances.min())
    return best


def test_find_overlap_matches_brute_force_on_skewed_cells():
    rng = np.random.default_rng(2)
    checked = 0
    while checked < 30:
        lattice = rng.normal(size=(3, 3)) * 2 + np.eye(3) * rng.uniform(1, 4)
        if abs(np.linalg.det(lattice)) < 0.5:
            continue
        frac = rng.uniform(-1.5, 1.5, size=(int(rng.integers(1, 6)), 3))
        reference = _brute_min_distance(lattice, frac)
        found = find_overlap(lattice, frac, reference * (1 + 1e-9))
        assert found is not None and found[2] == pytest.approx(reference, abs=1e-9)
        assert find_overlap(lattice, frac, reference * (1 - 1e-9)) is None
        checked += 1


def test_min_distance_agrees_with_pymatgen_distance_matrix():
    rng = np.random.default_rng(3)
    lattice = np.array([[6.0, 0, 0], [2.0, 5.5, 0], [1.0, 1.5, 7.0]])
    frac = rng.random((12, 3))
    structure = Structure(Lattice(lattice), ["C"] * 12, frac)
    reference = (structure.distance_matrix + np.eye(12) * 1e9).min()
    found = find_overlap(lattice, frac, 100.0)
    assert found[2] == pytest.approx(min(reference, _brute_min_distance(lattice, frac)), abs=1e-9)
