"""CIF writing and reading: exact round trips, agreement with pymatgen, and the pre-checks."""

import logging
import time
import warnings

import numpy as np
import pytest
from pymatgen.core import Structure
from pymatgen.io.cif import CifParser

from xtal import Crystal, CrystalError, ValidationLimits
from xtal._cif import split_blocks, tokenize_block
from xtal._cif_checks import fractional_sites, orbit_sizes

ROCKSALT = """data_NaCl
_symmetry_space_group_name_H-M   'F m -3 m'
_symmetry_Int_Tables_number   225
_cell_length_a   5.64
_cell_length_b   5.64
_cell_length_c   5.64
_cell_angle_alpha   90
_cell_angle_beta   90
_cell_angle_gamma   90
loop_
 _atom_site_type_symbol
 _atom_site_label
 _atom_site_symmetry_multiplicity
 _atom_site_fract_x
 _atom_site_fract_y
 _atom_site_fract_z
 _atom_site_occupancy
  Na  Na1  4  0  0  0  1
  Cl  Cl1  4  0.5  0.5  0.5  1
"""

WURTZITE = """data_ZnO
_symmetry_space_group_name_H-M   'P 6_3 m c'
_cell_length_a   3.25
_cell_length_b   3.25
_cell_length_c   5.21
_cell_angle_alpha   90
_cell_angle_beta   90
_cell_angle_gamma   120
loop_
 _atom_site_label
 _atom_site_type_symbol
 _atom_site_fract_x
 _atom_site_fract_y
 _atom_site_fract_z
  Zn1  Zn2+  0.3333  0.6667  0.0
  O1   O2-   0.3333  0.6667  0.382
"""


def reference(text: str) -> Structure:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return CifParser.from_str(text).parse_structures(primitive=False)[0]


def gram(lattice: np.ndarray) -> np.ndarray:
    return lattice @ lattice.T


def triclinic() -> Crystal:
    rng = np.random.default_rng(9)
    lattice = np.eye(3) * 6 + rng.normal(scale=0.8, size=(3, 3))
    frac = rng.random((7, 3))
    frac[0] = [0.33334, 2 / 3, 0.1]  # pymatgen would snap these to 1/3 and 2/3 by default
    return Crystal(
        lattice,
        frac,
        [8, 26, 8, 3, 26, 8, 15],
        properties={"e_form": -1.25, "spacegroup.number": 2.0},
        id="mp-42",
    )


def test_round_trip_is_exact_up_to_rotation():
    crystal = triclinic()
    text = crystal.to_cif()
    assert text.splitlines()[1] == "data_mp-42"
    back = Crystal.from_cif(text)
    np.testing.assert_allclose(back.frac_coords, crystal.frac_coords, rtol=0, atol=2e-16)
    np.testing.assert_allclose(gram(back.lattice), gram(crystal.lattice), rtol=1e-13)
    assert back.atomic_numbers.tolist() == crystal.atomic_numbers.tolist()
    assert (back.id, dict(back.properties)) == (crystal.id, dict(crystal.properties))
    assert back.content_hash() == crystal.content_hash()


def test_written_cif_is_read_by_pymatgen_alone():
    crystal = triclinic()
    structure = reference(crystal.to_cif())
    assert structure.composition == crystal.to_pymatgen().composition
    np.testing.assert_allclose(gram(structure.lattice.matrix), gram(crystal.lattice), rtol=1e-13)


def test_symmetric_cif_matches_pymatgen():
    for text, expected_atoms in ((ROCKSALT, 8), (WURTZITE, 4)):
        crystal = Crystal.from_cif(text)
        structure = reference(text)
        assert crystal.num_atoms == len(structure) == expected_atoms
        ours = sorted(
            zip(crystal.atomic_numbers, map(tuple, np.round(crystal.frac_coords, 9)), strict=True)
        )
        theirs = sorted(
            zip(
                structure.atomic_numbers,
                map(tuple, np.round(structure.frac_coords, 9)),
                strict=True,
            )
        )
        assert ours == theirs


def test_orbit_sizes_match_pymatgen_expansion():
    for text in (ROCKSALT, WURTZITE):
        block = tokenize_block(text)
        parser = CifParser.from_str(text)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ops = parser.get_symops(block)
        rotations = np.array([op.rotation_matrix for op in ops])
        translations = np.array([op.translation_vector for op in ops])
        sizes = orbit_sizes(fractional_sites(block, snap=True), rotations, translations)
        assert sizes.sum() == len(reference(text))


def test_p1_blocks_keep_file_order_and_literal_coordinates():
    crystal = triclinic()
    structure = reference(crystal.to_cif())
    assert structure.atomic_numbers != tuple(crystal.atomic_numbers)  # pymatgen sorts by X
    assert not np.isclose(structure.frac_coords, 0.33334, rtol=0, atol=1e-12).any()  # snapped
    back = Crystal.from_cif(crystal.to_cif())
    assert back.frac_coords[0, 0] == 0.33334


def test_from_cif_wants_exactly_one_block():
    with pytest.raises(CrystalError, match="multiple_structures"):
        Crystal.from_cif(ROCKSALT + ROCKSALT.replace("data_NaCl", "data_again"))
    with pytest.raises(CrystalError, match="empty"):
        Crystal.from_cif("  \n")
    with pytest.raises(CrystalError, match="cif_parse: no 'data_' block"):
        Crystal.from_cif("# only a comment\n_cell_length_a 4\n")


def test_from_cif_meta_and_limits():
    crystal = Crystal.from_cif(ROCKSALT, id="nacl", properties={"e": 1.0})
    assert crystal.id == "nacl" and dict(crystal.properties) == {"e": 1.0}
    with pytest.raises(CrystalError, match="too_many_atoms: the symmetry operations expand"):
        Crystal.from_cif(ROCKSALT, ValidationLimits(max_atoms=4))


def test_unsafe_names_are_dropped_with_a_warning(caplog):
    crystal = triclinic().replace(id="has space", properties={"bad name": 1.0, "ok": 2.0})
    with caplog.at_level(logging.WARNING, logger="xtal._cif"):
        back = Crystal.from_cif(crystal.to_cif())
    assert back.id == "" and dict(back.properties) == {"ok": 2.0}
    assert "has space" in caplog.text and "bad name" in caplog.text


def test_split_blocks_ignores_data_lines_in_text_fields():
    text = "# head\ndata_a\n_note\n;\ndata_not_a_block\n;\ndata_b\n_x 1\n"
    blocks = list(split_blocks(text.splitlines(keepends=True)))
    assert [line for line, _ in blocks] == [1, 7]
    assert blocks[0][1].startswith("# head\ndata_a") and "data_not_a_block" in blocks[0][1]


def test_huge_p1_cif_is_rejected_before_parsing():
    rng = np.random.default_rng(0)
    rows = "".join(
        f"  Cu Cu{i} {x:.5f} {y:.5f} {z:.5f} 1\n"
        for i, (x, y, z) in enumerate(rng.random((10_000, 3)))
    )
    text = ROCKSALT.split("loop_")[0].replace("'F m -3 m'", "'P 1'").replace("225", "1")
    text += "loop_\n _atom_site_type_symbol\n _atom_site_label\n _atom_site_fract_x\n"
    text += " _atom_site_fract_y\n _atom_site_fract_z\n _atom_site_occupancy\n" + rows
    start = time.perf_counter()
    with pytest.raises(CrystalError, match="10000 atom sites exceed the limit of 1000"):
        Crystal.from_cif(text)
    assert time.perf_counter() - start < 5.0
