"""Conversions to and from pymatgen Structure and ASE Atoms."""

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from pymatgen.core import Composition, Lattice, PeriodicSite, Species, Structure

from xtal import Crystal, CrystalError, Provenance


def sample() -> Crystal:
    rng = np.random.default_rng(4)
    lattice = np.eye(3) * 5 + rng.normal(scale=0.4, size=(3, 3))
    return Crystal(
        lattice,
        rng.uniform(-0.5, 1.5, size=(4, 3)),
        [3, 8, 8, 25],
        properties={"energy_per_atom": -3.25, "band_gap": 1.5},
        id="mp-0",
    )


def test_pymatgen_round_trip_is_exact_and_keeps_order():
    crystal = sample()
    structure = crystal.to_pymatgen()
    np.testing.assert_array_equal(structure.lattice.matrix, crystal.lattice)
    np.testing.assert_array_equal(structure.frac_coords, crystal.frac_coords)
    assert [site.specie.Z for site in structure] == crystal.atomic_numbers.tolist()
    back = Crystal.from_pymatgen(structure)
    assert back == crystal  # exact: arrays, properties, id (provenance default on both)


def test_from_pymatgen_meta_overrides_and_provenance():
    structure = sample().to_pymatgen()
    back = Crystal.from_pymatgen(
        structure, id="new", properties={"band_gap": 2.0}, provenance=Provenance(source="s")
    )
    assert back.id == "new" and back.provenance.source == "s"
    assert dict(back.properties) == {"energy_per_atom": -3.25, "band_gap": 2.0}
    with pytest.raises(TypeError):
        Crystal.from_pymatgen(structure, colour="red")


def test_from_pymatgen_accepts_oxidation_states():
    structure = Structure(
        Lattice.cubic(4.2), [Species("Mg", 2), Species("O", -2)], [[0, 0, 0], [0.5] * 3]
    )
    assert Crystal.from_pymatgen(structure).atomic_numbers.tolist() == [12, 8]


@pytest.mark.parametrize(
    ("species", "code"),
    [
        ({"Fe": 0.5, "Ni": 0.5}, "partial_occupancy"),
        ({"Fe": 0.5}, "partial_occupancy"),
        ({"Fe": 0.75, "Ni": 0.5}, "over_occupancy"),
    ],
)
def test_from_pymatgen_rejects_disorder(species, code):
    lattice = Lattice.cubic(3.0)
    structure = Structure(lattice, ["Fe", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    # as pymatgen's CifParser does for unphysical occupancies
    structure[0] = PeriodicSite(Composition(species), [0, 0, 0], lattice, skip_checks=True)
    with pytest.raises(CrystalError) as info:
        Crystal.from_pymatgen(structure)
    assert info.value.code == code and "site 0" in info.value.message


def test_from_pymatgen_rejects_dummy_species():
    structure = Structure(Lattice.cubic(3.0), ["X0+", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    with pytest.raises(CrystalError, match="unknown_element"):
        Crystal.from_pymatgen(structure)


def test_to_pymatgen_rejects_unknown_atomic_number():
    with pytest.raises(CrystalError, match="unknown_element"):
        Crystal(np.eye(3) * 3, [[0, 0, 0]], [0]).to_pymatgen()


def test_ase_round_trip():
    crystal = sample()
    atoms = crystal.to_ase()
    assert atoms.pbc.all() and atoms.info["id"] == "mp-0"
    np.testing.assert_array_equal(atoms.cell.array, crystal.lattice)
    np.testing.assert_allclose(atoms.positions, crystal.cart_coords, atol=1e-12)
    back = Crystal.from_ase(atoms)
    np.testing.assert_array_equal(back.lattice, crystal.lattice)
    np.testing.assert_allclose(back.frac_coords, crystal.frac_coords, atol=1e-12)
    assert back.atomic_numbers.tolist() == crystal.atomic_numbers.tolist()
    assert (dict(back.properties), back.id) == (dict(crystal.properties), crystal.id)


def test_from_ase_matches_pymatgen_adaptor():
    from pymatgen.io.ase import AseAtomsAdaptor

    atoms = bulk("NaCl", "rocksalt", a=5.64) * (1, 2, 1)
    crystal = Crystal.from_ase(atoms)
    reference = AseAtomsAdaptor.get_structure(atoms)
    np.testing.assert_allclose(crystal.lattice, reference.lattice.matrix)
    np.testing.assert_allclose(crystal.cart_coords, reference.cart_coords, atol=1e-12)


def test_from_ase_requires_full_periodicity():
    atoms = Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]], cell=np.eye(3) * 5, pbc=[1, 1, 0])
    with pytest.raises(CrystalError, match="not_periodic"):
        Crystal.from_ase(atoms)


def test_from_ase_singular_cell_is_reported_by_validation():
    atoms = Atoms("C", positions=[[0.5, 0, 0]], cell=[[1, 0, 0], [1, 0, 0], [0, 0, 1]], pbc=True)
    with pytest.raises(CrystalError, match="non_finite"):
        Crystal.from_ase(atoms).validate()


def test_from_ase_rejects_partial_occupancy_from_cif_reader():
    atoms = bulk("Cu", "fcc", a=3.6)
    atoms.info["occupancy"] = {"0": {"Cu": 0.5, "Au": 0.5}}
    with pytest.raises(CrystalError, match="partial_occupancy"):
        Crystal.from_ase(atoms)
