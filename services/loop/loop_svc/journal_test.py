"""The journal: created once, reloaded on resume (also one written before the yield fields
existed), refused for a different spec; saves are atomic (no partial file is ever read)."""

import json

import pytest
from autoperi.loop.v1 import loop_pb2 as pb

from loop_svc._convert import loop_to_proto
from loop_svc._journal import Journal, JournalError
from loop_svc._spec import Evaluation, LoopSpec

SPEC = LoopSpec("t", "data", "ck", ("SrTiO3",), Evaluation("held-out")).to_json()


def test_a_journal_is_saved_on_creation_and_reloaded_on_resume(tmp_path):
    journal = Journal.open(tmp_path, "l1", SPEC)
    assert json.loads(journal.path.read_text())["state"] == "pending"
    rnd = journal.round(2)
    rnd["done"].append("sampling")
    journal.save()
    again = Journal.open(tmp_path, "l1", SPEC)
    assert [r["index"] for r in again.data["rounds"]] == [1, 2]
    assert again.round(2)["done"] == ["sampling"]
    assert not list(tmp_path.rglob("*.tmp"))


def test_resuming_with_a_different_spec_is_refused(tmp_path):
    Journal.open(tmp_path, "l1", SPEC)
    with pytest.raises(JournalError, match="different spec"):
        Journal.open(tmp_path, "l1", {**SPEC, "num_rounds": 5})


def test_a_spec_checks_its_values():
    with pytest.raises(ValueError, match="num_rounds"):
        LoopSpec("t", "d", "ck", ("SrTiO3",), Evaluation("held-out"), num_rounds=0)
    with pytest.raises(ValueError, match="target"):
        LoopSpec("t", "d", "ck", (), Evaluation("held-out"))


def test_the_journal_reads_as_a_loop_message(tmp_path):
    journal = Journal.open(tmp_path, "l1", SPEC)
    journal.data.update(state="failed", error="LoopFailed: training run r1 ended RUN_STATE_FAILED")
    rnd = journal.round(1)
    rnd.update(stage="training", done=["sampling"], branch="loop-l1-round-1", num_selected=3)
    rnd["metric_before"] = 0.5
    message = loop_to_proto(journal.data)
    assert message.loop_id == "l1" and message.state == pb.LOOP_STATE_FAILED
    assert message.error.message.startswith("LoopFailed") and message.spec.num_rounds == 3
    [r] = message.rounds
    assert r.stage == pb.ROUND_STAGE_TRAINING and r.num_selected == 3 and r.metric_before == 0.5
    assert not r.HasField("metric_after") and r.branch == "loop-l1-round-1"


def test_a_journal_written_before_the_yield_fields_resumes_with_an_equal_spec(tmp_path):
    journal = Journal.open(tmp_path, "old", SPEC)
    data = json.loads(journal.path.read_text())
    for key in ("objective", "yield_samples", "stable_e_above_hull", "bootstrap_resamples",
                "confidence", "max_csp_drop"):  # fmt: skip
        del data["spec"]["evaluation"][key]
    del data["spec"]["chemical_space"], data["yields"]
    journal.path.write_text(json.dumps(data))
    again = Journal.open(tmp_path, "old", SPEC)
    assert again.data["spec"] == SPEC and again.data["yields"] == {}
