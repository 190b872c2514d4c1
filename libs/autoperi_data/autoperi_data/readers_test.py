"""Streaming readers: CSV and CIF files, per-record errors, summaries, and the benchmark data."""

import csv
import gzip
import itertools
import warnings
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Structure
from xtal import CrystalError
from xtal.cif_test import ROCKSALT

from autoperi_data import load_split_stats, read_records, summarize_records

SPLITS = {
    "perov_5": ("perov_5/train.csv", "perov_5/val.csv", "perov_5/test.csv"),
    "mp_20": ("mp_20/assembled/train.csv", "mp_20/assembled/val.csv", "mp_20/assembled/test.csv"),
    "carbon_24": ("carbon_24/val.csv", "carbon_24/test.csv"),
}
EXPECTED_ROWS = {  # from each dataset's SOURCE.md
    "perov_5/train.csv": 11_356,
    "perov_5/val.csv": 3_787,
    "perov_5/test.csv": 3_785,
    "mp_20/assembled/train.csv": 16_206,
    "mp_20/assembled/val.csv": 9_047,
    "mp_20/assembled/test.csv": 9_046,
    "carbon_24/val.csv": 2_032,
    "carbon_24/test.csv": 2_030,
}


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_csv_records_carry_id_properties_and_provenance(tmp_path):
    header = ["", "Unnamed: 0", "material_id", "cif", "formula", "heat", "gap", "cif.conv"]
    rows = [
        ["0", "7", "mp-1", ROCKSALT, "NaCl", "-1.5", "nan", "1.0"],
        ["1", "8", "mp-2", "junk", "X", "", "", ""],
    ]
    path = write_csv(tmp_path / "split.csv", header, rows)
    first, second = read_records(path, source="rock:test")
    assert (first.index, first.key, first.error) == (0, "mp-1", None)
    crystal = first.crystal
    assert crystal.id == "mp-1" and dict(crystal.properties) == {"heat": -1.5}
    assert (crystal.provenance.source, crystal.provenance.record) == ("rock:test", "mp-1")
    assert (second.index, second.key, second.code, second.crystal) == (1, "mp-2", "cif_parse", None)


def test_csv_without_id_column_uses_row_index_and_skips_blank_lines(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text(f'cif\n"{ROCKSALT}"\n\n"{ROCKSALT}"\n')
    records = list(read_records(path))
    assert [(r.index, r.key, r.crystal.id, r.error) for r in records] == [
        (0, "0", "", None),
        (1, "1", "", None),
    ]


def test_gzip_csv_and_multi_block_cif(tmp_path):
    plain = write_csv(tmp_path / "a.csv", ["material_id", "cif"], [["m1", ROCKSALT]])
    packed = tmp_path / "a.csv.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert [r.key for r in read_records(packed)] == ["m1"]
    cif = tmp_path / "two.cif"
    cif.write_text("# two blocks\n" + ROCKSALT + ROCKSALT.replace("data_NaCl", "data_second"))
    records = list(read_records(cif))
    assert [(r.index, r.key, r.error) for r in records] == [(0, "NaCl", None), (1, "second", None)]
    assert records[1].crystal.provenance.record == "second"


def test_file_level_problems_raise(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_records(tmp_path / "missing.cif")
    (tmp_path / "notes.txt").write_text("hello\n")
    with pytest.raises(CrystalError, match="unknown_format"):
        read_records(tmp_path / "notes.txt")
    bad_header = tmp_path / "h.csv"
    bad_header.write_bytes(b"material_id,c\xe9f\n1,2\n")
    with pytest.raises(CrystalError, match="not_utf8"):
        read_records(bad_header)


def test_summarize_counts_reasons(tmp_path):
    path = write_csv(
        tmp_path / "s.csv",
        ["material_id", "cif"],
        [["a", ROCKSALT], ["b", ""], ["c", "x"], ["d", ""]],
    )
    summary = summarize_records(read_records(path))
    assert (summary.total, summary.accepted, summary.rejected) == (4, 1, 3)
    assert summary.reasons == {"empty": 2, "cif_parse": 1}
    assert summary.examples["empty"].startswith("b: empty:")
    stats = load_split_stats(path, content_hash=True)
    assert stats.summary == summary and stats.rows_per_second > 0


def _reference_sites(structure: Structure) -> list:
    return sorted(
        (z, *np.round(np.mod(f, 1.0), 6) % 1.0)
        for z, f in zip(structure.atomic_numbers, structure.frac_coords, strict=True)
    )


@pytest.mark.parametrize("relative", [files[-1] for files in SPLITS.values()])
def test_first_rows_agree_with_pymatgen(data_dir, relative):
    """Our reading of the first 50 rows equals `Structure.from_str` (CDVAE's reader) to 1e-6."""
    with open(data_dir / relative, newline="") as handle:
        rows = list(itertools.islice(csv.DictReader(handle), 50))
    records = list(itertools.islice(read_records(data_dir / relative), 50))
    for row, record in zip(rows, records, strict=True):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            structure = Structure.from_str(row["cif"], fmt="cif")
        crystal = record.crystal
        np.testing.assert_allclose(
            crystal.lattice @ crystal.lattice.T, structure.lattice.metric_tensor, atol=1e-9
        )
        ours = _reference_sites(crystal.to_pymatgen())
        for mine, theirs in zip(ours, _reference_sites(structure), strict=True):
            assert mine[0] == theirs[0]
            delta = np.array(mine[1:]) - np.array(theirs[1:])
            np.testing.assert_allclose(delta - np.rint(delta), 0, atol=2e-6)


@pytest.mark.parametrize("relative", [files[-1] for files in SPLITS.values()])
def test_subset_of_each_dataset_loads_and_validates(data_dir, relative):
    records = list(itertools.islice(read_records(data_dir / relative), 500))
    assert len(records) == 500
    assert [r.error for r in records if r.error] == []
    assert all(r.crystal.properties for r in records)


@pytest.mark.slow
@pytest.mark.parametrize("relative", list(EXPECTED_ROWS))
def test_every_row_of_every_split_loads_and_validates(data_dir, relative):
    stats = load_split_stats(data_dir / relative, content_hash=True)
    assert stats.summary.reasons == {}
    assert stats.summary.accepted == EXPECTED_ROWS[relative]


def test_byte_order_mark_and_crlf_line_endings(tmp_path):
    path = tmp_path / "bom.csv"
    rows = [["mp-7", ROCKSALT.replace("\n", "\r\n")]]
    write_csv(path, ["material_id", "cif"], rows)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    (record,) = read_records(path)
    assert (record.key, record.error, record.crystal.num_atoms) == ("mp-7", None, 8)


PUBLICATION = "data_global\n_journal_name_full 'Acta Cryst. E'\n_publ_section_title\n;\nNaCl\n;\n"
POWDER = "data_profile\nloop_\n _pd_proc_2theta_corrected\n _pd_meas_counts_total\n 10.0 152\n"


def test_journal_cif_blocks_without_structure_are_skipped_not_rejected(tmp_path):
    """Publication and powder-profile blocks around a structure go to `on_skipped`."""
    path = tmp_path / "journal.cif"
    path.write_text(PUBLICATION + ROCKSALT + POWDER)
    skipped = []
    records = list(read_records(path, on_skipped=skipped.append))
    assert [(r.index, r.key, r.error) for r in records] == [(1, "NaCl", None)]
    assert [(r.index, r.key, r.code) for r in skipped] == [
        (0, "global", "no_structure"),
        (2, "profile", "no_structure"),
    ]
    assert skipped[0].error == (
        "no_structure: no crystal structure in block 'global' (e.g. a publication or"
        " powder-profile block)"
    )
    assert [r.key for r in read_records(path)] == ["NaCl"]  # without a callback: dropped


def test_a_file_without_any_structure_rejects_its_blocks(tmp_path):
    path = tmp_path / "publication.cif"
    path.write_text(PUBLICATION + POWDER)
    skipped = []
    records = list(read_records(path, on_skipped=skipped.append))
    assert [(r.key, r.code) for r in records] == [
        ("global", "no_structure"),
        ("profile", "no_structure"),
    ]
    assert skipped == []


def test_a_cut_structure_block_is_the_reason_not_the_publication_block(tmp_path):
    path = tmp_path / "cut.cif"
    path.write_text(PUBLICATION + ROCKSALT.split("_cell_length_c")[0])
    (record,) = read_records(path)
    assert record.error == (
        "cif_incomplete: cell parameter c (_cell_length_c) is missing (truncated file?)"
    )


def test_an_endless_line_is_refused_before_it_is_read_whole(tmp_path):
    for name, text in (
        ("line.cif", ROCKSALT + "#" * (2 << 20) + "\n"),
        ("line.csv", f'cif\n"{ROCKSALT}"\n' + "x" * (2 << 20) + "\n"),
    ):
        path = tmp_path / name
        path.write_text(text)
        records = list(read_records(path))
        assert records[-1].code == "too_large", records[-1].error
        assert "is longer than 1048576 characters" in records[-1].error


def test_an_endless_block_is_refused(tmp_path):
    path = tmp_path / "endless.cif"
    with open(path, "w") as handle:
        handle.write(ROCKSALT)
        handle.write(("#" * 1023 + "\n") * (65 << 10))  # 65 MiB of comments in the block
    (record,) = read_records(path)
    assert record.code == "too_large" and "passes 67108864 characters" in record.error
    assert record.error.startswith(f"too_large: {path} cannot be read: the block starting at")
