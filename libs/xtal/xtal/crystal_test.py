"""Crystal construction, immutability and derived quantities (checked against pymatgen)."""

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from xtal import Crystal, CrystalError, Provenance, atomic_number, element_symbol


def perovskite(**fields) -> Crystal:
    values = {
        "lattice": np.eye(3) * 3.905,
        "frac_coords": [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
        "atomic_numbers": [38, 22, 8, 8, 8],
    }
    return Crystal(**{**values, **fields})


def test_arrays_are_copied_typed_and_read_only():
    lattice = np.eye(3) * 4.0
    crystal = perovskite(lattice=lattice)
    lattice[0, 0] = 99.0
    assert crystal.lattice[0, 0] == 4.0
    assert crystal.lattice.dtype == np.float64 and crystal.frac_coords.dtype == np.float64
    assert crystal.atomic_numbers.dtype == np.int64
    for array in (
        crystal.lattice,
        crystal.frac_coords,
        crystal.atomic_numbers,
        crystal.cart_coords,
    ):
        with pytest.raises(ValueError):
            array[0] = 0
    with pytest.raises(AttributeError):
        crystal.id = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        crystal.properties["x"] = 1.0  # type: ignore[index]


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"lattice": np.eye(2)}, "shape"),
        ({"frac_coords": np.zeros((5, 2))}, "shape"),
        ({"atomic_numbers": [38, 22, 8]}, "shape"),
        ({"atomic_numbers": [[38, 22, 8, 8, 8]]}, "shape"),
        ({"atomic_numbers": [38, 22.5, 8, 8, 8]}, "unknown_element"),
        ({"frac_coords": [["a", 0, 0]] * 5}, "shape"),
        ({"properties": {"energy": "low"}}, "bad_property"),
        ({"properties": {"flag": True}}, "bad_property"),
    ],
)
def test_construction_rejects_malformed_fields(fields, code):
    with pytest.raises(CrystalError) as info:
        perovskite(**fields)
    assert info.value.code == code
    assert str(info.value).startswith(f"{code}: ")


def test_empty_crystal_is_constructible_but_invalid():
    crystal = Crystal(np.eye(3), [], [])
    assert crystal.num_atoms == 0 and crystal.frac_coords.shape == (0, 3) and crystal.formula == ""
    with pytest.raises(CrystalError, match="no_atoms"):
        crystal.validate()


def test_derived_quantities_match_pymatgen():
    rng = np.random.default_rng(0)
    lattice = np.eye(3) * 5 + rng.normal(scale=0.5, size=(3, 3))
    crystal = perovskite(lattice=lattice, frac_coords=rng.random((5, 3)))
    structure = Structure(Lattice(lattice), crystal.symbols, crystal.frac_coords)
    assert crystal.volume == pytest.approx(structure.volume, rel=1e-12)
    assert crystal.formula == structure.composition.reduced_formula == "SrTiO3"
    np.testing.assert_allclose(crystal.cart_coords, structure.cart_coords, atol=1e-12)
    lengths, angles = crystal.lattice_parameters()
    np.testing.assert_allclose(lengths, structure.lattice.abc)
    np.testing.assert_allclose(angles, structure.lattice.angles)
    assert crystal.symbols == ["Sr", "Ti", "O", "O", "O"]


def test_replace_returns_a_new_crystal_and_keeps_the_original():
    crystal = perovskite(id="a", properties={"e": 1.0})
    other = crystal.replace(id="b", provenance=Provenance(source="s"))
    assert (crystal.id, other.id, other.provenance.source) == ("a", "b", "s")
    assert dict(other.properties) == {"e": 1.0}


def test_equality_is_exact_and_hash_is_consistent():
    crystal = perovskite(properties={"e": -1.5}, id="x")
    same = perovskite(properties={"e": -1.5}, id="x")
    assert crystal == same and hash(crystal) == hash(same)
    assert crystal != perovskite(properties={"e": -1.5}, id="y")
    assert crystal != perovskite(frac_coords=crystal.frac_coords + 1e-12, properties={"e": -1.5})


def test_element_lookup():
    assert element_symbol(26) == "Fe" and atomic_number("Og") == 118
    with pytest.raises(CrystalError, match="unknown_element"):
        element_symbol(119)
    with pytest.raises(CrystalError, match="unknown_element"):
        atomic_number("Xx")
