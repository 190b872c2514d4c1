"""The per-round report from a round's real files: tables with the branch, commits, run,
counts and decision, and the PNG figures (real Perov-5 crystals, made-up scores)."""

import json

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
