"""The fuzzer (`make fuzz`) at a small size: real reader workers, a real ingest server, a real
socket; nothing found, the report written; hangs detected with their input saved."""

import json
from pathlib import Path

import pytest

from autoperi_app._fuzz import DEFAULT_CORPUS, FuzzPlan, run_fuzz
from autoperi_app._fuzz_ingest import IngestPlan
from autoperi_app._fuzz_inputs import MUTATIONS, FuzzCorpus
from autoperi_app._fuzz_reader import ReaderPlan, fuzz_reader

ROOT = Path(__file__).resolve().parents[3]
CORPUS = [ROOT / d for d in DEFAULT_CORPUS]


@pytest.fixture(scope="module")
def corpus() -> FuzzCorpus:
    return FuzzCorpus.load(CORPUS)


def test_an_input_is_rebuilt_from_seed_stream_and_index(corpus):
    assert corpus.input(3, "reader", 17) == corpus.input(3, "reader", 17)
    inputs = {corpus.input(3, "reader", i).data for i in range(50)}
    assert len(inputs) > 45
    assert corpus.input(3, "reader", 17) != corpus.input(3, "ingest", 17)


def test_every_mutation_is_used_and_inputs_stay_bounded(corpus):
    inputs = [corpus.input(0, "reader", i) for i in range(600)]
    used = {m for item in inputs for m in item.mutations}
    assert used == {*MUTATIONS, "gzip"}
    assert max(len(item.data) for item in inputs) <= 2 << 20
    assert any(item.suffix == ".cif.gz" for item in inputs)


def test_short_fuzz_finds_nothing_and_writes_the_report(tmp_path):
    """The short version of `make fuzz`: 2,000 reader inputs, 100 through the ingest service."""
    plan = FuzzPlan(ReaderPlan(2_000), IngestPlan(100), tuple(CORPUS))
    result = run_fuzz(plan, tmp_path)
    reader, ingest = result["reader"], result["ingest"]
    assert (reader["inputs"], reader["crashes"], reader["hangs"]) == (2_000, 0, 0), reader
    assert reader["contract_violations"] == 0 and reader["records"] > 2_000
    assert reader["accepted_records"] > 0 and len(reader["rejected_records"]) > 10
    assert (ingest["inputs"], ingest["calls"], ingest["statuses"]) == (100, 2, {"OK": 2})
    assert (ingest["partial_commits"], ingest["problems"]) == (0, {}), ingest["findings"]
    assert ingest["commits"] >= 1 and ingest["retries_checked"] >= 1
    assert result["passed"]
    assert json.loads((tmp_path / "fuzz.json").read_text())["passed"]
    assert "Verdict: **passed**" in (tmp_path / "fuzz.md").read_text()
    assert not (tmp_path / "fuzz_findings").exists()


BIG_CIF_HEAD = """data_big
_cell_length_a 40
_cell_length_b 40
_cell_length_c 40
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
loop_
_atom_site_type_symbol
_atom_site_label
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
"""


def test_an_input_over_the_hang_limit_is_killed_and_saved(tmp_path):
    """With a hang limit of 0 s every read is late: its worker is killed (or, if the result
    won the race, its time counted over the limit) and its input saved. The seed file (50,000
    atom sites, read in about 0.2 s) makes the kill the likely path."""
    rows = "".join(f"Na Na{i} {i % 37 / 37:.4f} {i % 41 / 41:.4f} 0.5\n" for i in range(50_000))
    (tmp_path / "seeds").mkdir()
    (tmp_path / "seeds" / "big.cif").write_text(BIG_CIF_HEAD + rows)
    dirs = [tmp_path / "seeds"]
    result = fuzz_reader(dirs, ReaderPlan(2, workers=1, hang_s=0.0), tmp_path / "found")
    assert (result["inputs"], result["hangs"], result["crashes"]) == (2, 2, 0)
    assert any(f["detail"].endswith("(killed)") for f in result["findings"]), result["findings"]
    for finding in result["findings"]:
        saved = Path(finding["saved"]).read_bytes()
        assert saved == FuzzCorpus.load(dirs).input(0, "reader", finding["index"]).data
