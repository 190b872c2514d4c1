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


PUBLICATION = """data_global
_journal_name_full 'Acta Crystallographica Section E'
_publ_section_title
;
Sodium chloride revisited
;
loop_
 _publ_author_name
  'Author, A.'
"""


def test_a_block_without_cell_or_atom_sites_has_no_structure():
    with pytest.raises(CrystalError) as info:
        Crystal.from_cif(PUBLICATION)
    assert info.value.code == "no_structure"
    assert info.value.message == (
        "no crystal structure in block 'global' (e.g. a publication or powder-profile block)"
    )


def test_from_cif_reads_the_structure_block_of_a_journal_cif():
    """A publication block beside one structure block is ignored, before or after it."""
    for text in (PUBLICATION + ROCKSALT, ROCKSALT + PUBLICATION):
        assert Crystal.from_cif(text) == Crystal.from_cif(ROCKSALT)
    two = PUBLICATION + ROCKSALT + ROCKSALT.replace("data_NaCl", "data_again")
    with pytest.raises(CrystalError, match="multiple_structures: expected one structure, found 2"):
        Crystal.from_cif(two)


def test_only_a_partial_cell_suggests_a_truncated_file():
    no_cell = "\n".join(line for line in ROCKSALT.splitlines() if "_cell_" not in line)
    with pytest.raises(CrystalError) as info:
        Crystal.from_cif(no_cell)
    assert info.value.code == "cif_incomplete" and "truncated" not in info.value.message
    assert "atom sites but no cell" in info.value.message
    cut = ROCKSALT.split("_cell_length_c")[0]
    with pytest.raises(CrystalError, match=r"cell parameter c .* is missing \(truncated file\?\)"):
        Crystal.from_cif(cut)


@pytest.mark.parametrize(
    ("old", "new", "fragment"),
    [
        ("Na1  4  0  0  0", "Na1  4  1e308  0  0", "coordinate x of atom site 'Na1' is '1e308'"),
        ("_cell_length_b   5.64", "_cell_length_b   1e6", "lengths [5.64, 1000000.0, 5.64] A"),
        ("_cell_length_a   5.64", "_cell_length_a   1e308", "beyond the limit of 1000 A"),
    ],
)
def test_huge_numbers_are_refused_never_wrapped(old, new, fragment):
    with pytest.raises(CrystalError) as info:
        Crystal.from_cif(ROCKSALT.replace(old, new))
    assert info.value.code == "out_of_range" and fragment in info.value.message


def test_more_symmetry_operations_than_a_space_group_has_are_refused():
    ops = "".join(f"  {i} 'x, y, z+{i}/5001'\n" for i in range(1, 5002))
    loop = "loop_\n _symmetry_equiv_pos_site_id\n _symmetry_equiv_pos_as_xyz\n" + ops
    text = ROCKSALT.replace("_symmetry_space_group_name_H-M   'F m -3 m'\n", loop)
    start = time.perf_counter()
    with pytest.raises(CrystalError, match="bad_symmetry: the block lists 5001 symmetry oper"):
        Crystal.from_cif(text)
    assert time.perf_counter() - start < 5.0


def test_a_symmetry_operation_with_a_huge_number_is_refused_before_pymatgen_parses_it():
    """pymatgen's operation parser takes cubic time in a number's length (found by `make fuzz`)."""
    loop = "loop_\n _symmetry_equiv_pos_as_xyz\n  'x, y, z'\n  'x+1/" + "9" * 2000 + ", y, z'\n"
    text = ROCKSALT.replace("_symmetry_space_group_name_H-M   'F m -3 m'\n", loop)
    start = time.perf_counter()
    with pytest.raises(CrystalError, match=r"bad_symmetry: symmetry operation .* is too long"):
        Crystal.from_cif(text)
    assert time.perf_counter() - start < 2.0


def test_a_p1_block_listing_the_identity_many_times_is_expanded_once():
    """pymatgen expands a block by every listed operation (found by `make fuzz`: 51 copies of
    x, y, z and 1,000 sites took 7 s)."""
    ops = "".join(f"  {k} 'x, y, z'\n" for k in range(1, 101))
    sites = "".join(
        f"  Na Na{i} {i % 10 / 10} {i // 10 % 10 / 10} {i // 100 / 10} 1\n" for i in range(1000)
    )
    loop = "loop_\n _symmetry_equiv_pos_site_id\n _symmetry_equiv_pos_as_xyz\n" + ops
    text = ROCKSALT.replace("_symmetry_space_group_name_H-M   'F m -3 m'\n", loop)
    text = text.replace("5.64", "40.0").split("  Na  Na1")[0] + sites
    text = text.replace(" _atom_site_symmetry_multiplicity\n", "")
    start = time.perf_counter()
    crystal = Crystal.from_cif(text)
    assert crystal.num_atoms == 1000 and time.perf_counter() - start < 3.0


def _explicit_ops_block(ops: list[str], sites: list[tuple[float, float, float]]) -> str:
    """A 40 A cubic Na block with these symmetry operations and sites."""
    loop = "".join(f"  {k} '{op}'\n" for k, op in enumerate(ops, 1))
    rows = "".join(f"  Na Na{i} {x:.4f} {y:.4f} {z:.4f} 1\n" for i, (x, y, z) in enumerate(sites))
    return (
        "data_ops\nloop_\n _symmetry_equiv_pos_site_id\n _symmetry_equiv_pos_as_xyz\n" + loop
        + "".join(f"_cell_length_{a} 40.0\n" for a in "abc")
        + "".join(f"_cell_angle_{a} 90\n" for a in ("alpha", "beta", "gamma"))
        + "loop_\n _atom_site_type_symbol\n _atom_site_label\n _atom_site_fract_x\n"
        + " _atom_site_fract_y\n _atom_site_fract_z\n _atom_site_occupancy\n" + rows
    )  # fmt: skip


def test_repeated_symmetry_operations_are_applied_once():
    """48 copies of each P-1 operation over 500 sites: the crystal of one copy, in well under
    the 5 s pymatgen takes to expand by every copy (found by `make fuzz`)."""
    sites = [(0.02 + 0.045 * (i % 10), i // 10 % 10 / 10 + 0.013, i // 100 / 10 + 0.017)
             for i in range(500)]  # fmt: skip
    once = Crystal.from_cif(_explicit_ops_block(["x, y, z", "-x, -y, -z"], sites))
    start = time.perf_counter()
    repeated = Crystal.from_cif(_explicit_ops_block(["x, y, z", "-x, -y, -z"] * 48, sites))
    assert time.perf_counter() - start < 3.0
    assert repeated.num_atoms == once.num_atoms == 1000
    np.testing.assert_allclose(repeated.frac_coords, once.frac_coords)


def test_nearly_equal_symmetry_operations_are_refused_before_expansion():
    """pymatgen takes about 2 minutes over this block (and makes 14,200 atoms of it)."""
    ops = [f"x+{k}/100000, y, z" for k in range(150)]
    sites = [(i % 10 / 10, i // 10 % 10 / 10, i // 100 / 10) for i in range(1000)]
    start = time.perf_counter()
    with pytest.raises(CrystalError, match="bad_symmetry: 150 symmetry operations leave most"):
        Crystal.from_cif(_explicit_ops_block(ops, sites))
    assert time.perf_counter() - start < 5.0


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


def test_split_blocks_bounds_a_block():
    lines = ["data_a\n", "_x 1\n", "data_b\n", *["# padding\n"] * 20]
    blocks = split_blocks(lines, max_chars=100)
    assert next(blocks) == (1, "data_a\n_x 1\n")
    with pytest.raises(CrystalError, match="too_large: the block starting at line 3 passes 100"):
        next(blocks)


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
