"""Site symmetry checked against spglib on real crystals: orbits, free parameters, idealisation."""

import itertools

import numpy as np
import pytest
import spglib
from autoperi_data import read_records

from xtal._symmetry import (
    SymmetryError,
    idealize,
    site_symmetry,
    sublattice_basis,
    symmetric_metric,
)


def _first(path, n):
    return [r.crystal for r in itertools.islice(read_records(path), n)]


@pytest.fixture(scope="module")
def crystals(data_dir):
    """150 MP-20 and 50 Perov-5 test crystals (every common space group occurs)."""
    return _first(data_dir / "mp_20/assembled/test.csv", 150) + _first(
        data_dir / "perov_5/test.csv", 50
    )


def _spacegroup(lattice, frac, numbers, symprec=1e-5):
    return spglib.get_symmetry_dataset((lattice, frac, numbers), symprec=symprec).number


def test_sublattice_basis_of_a_plane_is_unimodular():
    basis = sublattice_basis(np.diag([1.0, 1.0, 0.0]))
    assert basis.shape == (3, 2)
    assert abs(abs(np.linalg.det(np.c_[basis, [0, 0, 1]])) - 1) < 1e-9


def test_sublattice_basis_of_a_line_is_its_shortest_integer_vector():
    line = np.outer([1.0, 2.0, 0.0], [1.0, 2.0, 0.0]) / 5.0
    assert sorted(np.abs(sublattice_basis(line).ravel())) == [0, 1, 2]


def test_sublattice_basis_refuses_an_irrational_line():
    line = np.outer([1.0, np.sqrt(2), 0.0], [1.0, np.sqrt(2), 0.0]) / 3.0
    with pytest.raises(SymmetryError):
        sublattice_basis(line)


def test_orbits_and_groups_agree_with_spglib(crystals):
    for c in crystals:
        sym = site_symmetry(c.lattice, c.frac_coords, c.atomic_numbers)
        data = spglib.get_symmetry_dataset(
            (c.lattice, c.frac_coords, c.atomic_numbers), symprec=0.01
        )
        assert sym.number == data.number
        assert np.array_equal(sym.representative, data.equivalent_atoms)
        rebuilt = np.einsum("nij,nj->ni", sym.rotation, c.frac_coords[sym.representative])
        gap = (rebuilt + sym.translation - c.frac_coords) @ c.lattice
        assert np.abs(gap).max() < 0.02  # within the analysis tolerance, no lattice shift


def test_free_parameters_keep_the_space_group(crystals):
    """Moving every representative along its free basis and rebuilding the orbits keeps the
    crystal in its space group exactly (spglib at symprec 1e-5), which generation relies on."""
    rng = np.random.default_rng(0)
    for c in crystals:
        lattice, frac, numbers = idealize(c.lattice, c.frac_coords, c.atomic_numbers)
        sym = site_symmetry(lattice, frac, numbers, symprec=1e-4)
        assert sym.number == _spacegroup(c.lattice, c.frac_coords, c.atomic_numbers, 0.01)
        assert _spacegroup(lattice, frac, numbers) == sym.number
        shift = np.einsum("nij,nj->ni", sym.free_basis, rng.uniform(-0.05, 0.05, (len(frac), 3)))
        reps = frac[sym.representative] + shift[sym.representative]
        moved = np.einsum("nij,nj->ni", sym.rotation, reps) + sym.translation
        found = _spacegroup(lattice, moved, numbers)
        # a move can only add symmetry by accident, never lose it
        sub = spglib.get_symmetry_dataset((lattice, moved, numbers), symprec=1e-5)
        assert found == sym.number or len(sub.rotations) >= len(sym.op_rotations)


def test_projector_is_the_site_average_and_idempotent(crystals):
    for c in crystals[:60]:
        sym = site_symmetry(c.lattice, c.frac_coords, c.atomic_numbers)
        for atom in np.unique(sym.representative):
            p = sym.projector(atom)
            assert np.allclose(p @ p, p, atol=1e-9)
            assert np.linalg.matrix_rank(p, tol=1e-6) == sym.rank[atom]
            basis = sym.free_basis[atom][:, : sym.rank[atom]]
            assert np.array_equal(basis, np.round(basis))


def test_symmetric_metric_is_invariant(crystals):
    for c in crystals[:60]:
        sym = site_symmetry(c.lattice, c.frac_coords, c.atomic_numbers)
        rng = np.random.default_rng(1)
        a = rng.normal(size=(3, 3))
        metric = symmetric_metric(a @ a.T + 3 * np.eye(3), sym.point_group)
        for rot in sym.point_group:
            assert np.allclose(rot.T @ metric @ rot, metric, atol=1e-9)


def test_no_space_group_is_a_clear_error():
    lattice = np.eye(3) * 4.0
    frac = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])  # two atoms on one site
    with pytest.raises(SymmetryError):
        site_symmetry(lattice, frac, np.array([1, 1]))
