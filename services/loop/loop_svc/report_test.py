"""The per-round report from a round's real files: tables with the branch, commits, run,
counts and decision, and the PNG figures (real Perov-5 crystals, made-up scores); for the S.U.N.
yield objective, the yields with their interval and the S.U.N. crystals with their CIF."""

import json

from autoperi.crystal.v1 import crystal_pb2
from trainer_svc.testing import perov_subset
from xtal import convert

from loop_svc import Candidates
from loop_svc._report import write_report
from loop_svc._spec import Evaluation, LoopSpec


def _round_files(tmp_path, crystals):
    files = tmp_path / "loop" / "round-1"
    files.mkdir(parents=True)
    Candidates(convert.to_proto(c) for c in crystals).write(files / "candidates.pb")
    rows = [
        {
            "content_hash": c.content_hash(), "formula": c.formula, "num_atoms": c.num_atoms,
            "energy_per_atom": -5.0 - 0.1 * i, "e_above_hull": 0.01 * i,
            "structure_valid": True, "composition_valid": i != 2, "novel": i != 3,
            "space_group_number": 221, "space_group_symbol": "Pm-3m", "error": "",
        }
        for i, c in enumerate(crystals)
    ]  # fmt: skip
    (files / "scores.json").write_text(json.dumps(rows))


def test_the_report_has_the_rounds_table_and_figures(tmp_path, data_dir):
    crystals = perov_subset(data_dir, 5)
    _round_files(tmp_path, crystals)
    spec = LoopSpec("demo", "data", "ck", ("SrTiO3",), Evaluation("held-out"))
    rnd = {
        "index": 1, "stage": "done", "done": ["sampling", "scoring"], "branch": "loop-x-round-1",
        "ingest_commit_id": "c" * 64, "training_run_id": "run123", "checkpoint_id": "d" * 64,
        "num_generated": 5, "num_scored": 5, "num_valid": 4, "num_novel": 4, "num_selected": 2,
        "selected": [4, 0], "metric_before": 0.4, "metric_after": 0.38,
        "decision": "not merged: match_rate 0.4000 -> 0.3800 (-0.0200)",
    }  # fmt: skip
    journal = {
        "loop_id": "x", "spec": spec.to_json(), "state": "succeeded", "rounds": [rnd],
        "base_checkpoint_id": "b" * 64, "current_checkpoint_id": "b" * 64, "error": "",
    }  # fmt: skip
    out = tmp_path / "report"
    summary = write_report(journal, tmp_path / "loop", out).read_text()
    assert "`loop-x-round-1`" in summary and "run123" in summary and "not merged" in summary
    page = (out / "round-1.md").read_text()
    assert page.count(crystals[4].content_hash()[:16]) == 1 and "| 0 |" in page
    for name in ("energy_per_atom", "e_above_hull", "counts", "space_groups", "best"):
        assert (out / f"round-1_{name}.png").stat().st_size > 1000
        assert f"round-1_{name}.png" in page
    assert json.loads((out / "journal.json").read_text())["rounds"][0]["index"] == 1
    scores = json.loads((out / "round-1.json").read_text())
    assert [row["index"] for row in scores] == [4, 0]
    assert scores[0]["content_hash"] == crystals[4].content_hash()


def test_a_yield_round_reports_its_yields_and_sun_crystals(tmp_path, data_dir):
    crystals = perov_subset(data_dir, 5)
    _round_files(tmp_path, crystals)
    checkpoint = "d" * 64
    folder = tmp_path / "loop" / "yields"
    folder.mkdir()
    batch = crystal_pb2.CrystalBatch(crystals=[convert.to_proto(c) for c in crystals[:4]])
    (folder / f"{checkpoint}.pb").write_bytes(batch.SerializeToString())
    record = {
        "n": 4, "yield": 500.0, "num_sun": 2, "num_scored": 4, "num_unrelaxed": 0,
        "stable": "1101", "unique": "1111", "novel": "1011", "sun": "1001",
        "e_above_hull": [0.01, 0.05, None, -0.02], "file": f"yields/{checkpoint}.pb",
    }  # fmt: skip
    evaluation = Evaluation("held-out", objective="sun_yield", yield_samples=4)
    spec = LoopSpec("demo", "data", "ck", ("SrTiO3",), evaluation)
    rnd = {
        "index": 1, "stage": "done", "done": ["sampling", "scoring"], "checkpoint_id": checkpoint,
        "selected": [0], "yield_before": 250.0, "yield_after": 500.0, "yield_diff_low": -250.0,
        "yield_diff_high": 750.0, "num_sun_before": 1, "num_sun": 2, "decision": "not merged",
    }  # fmt: skip
    journal = {
        "loop_id": "x", "spec": spec.to_json(), "state": "succeeded", "rounds": [rnd],
        "base_checkpoint_id": "b" * 64, "current_checkpoint_id": "b" * 64, "error": "",
        "yields": {checkpoint: record},
    }  # fmt: skip
    out = tmp_path / "report"
    summary = write_report(journal, tmp_path / "loop", out).read_text()
    assert "| 250.0 | 500.0 | [-250.0, +750.0] | 2 | not merged |" in summary
    page = (out / "round-1.md").read_text()
    assert "before fine-tuning: 250.0 per 1000 (1 of 4 samples)" in page
    assert "stable 3, unique 4, novel 3 of 4" in page
    for i in (0, 3):
        assert f"| {i} | {crystals[i].formula} |" in page
        assert crystals[i].content_hash()[:16] in page
    assert crystals[1].content_hash()[:16] not in page.split("## S.U.N. yield")[1]
    cif = (out / "round-1_sun.cif").read_text()
    assert cif.count("data_sample") == 2 and "data_sample3_" in cif
