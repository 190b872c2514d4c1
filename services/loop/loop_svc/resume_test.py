"""A loop killed (SIGKILL) mid-round and restarted with the same id finishes without duplicated
data: the dataset holds exactly the seed plus the round's selection, and the round has one
training run; a third start of the finished loop changes nothing. Runs the `autoperi loop`
program in a subprocess against in-process servers (min_improvement -1: the round merges)."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from loop_svc._candidates import Candidates
from loop_svc._clients import IngestClient, TrainerClient
from loop_svc._rounds import candidate_scores, fingerprint_fn
from loop_svc._select import SelectionCriteria, select_candidates
from loop_svc.conftest import CHECKPOINT, DATASET

LOOP_ID = "killme"


def _command(stack, data_dir, tmp_path) -> list[str]:
    return [
        sys.executable, "-m", "loop_svc.main", "--dataset", DATASET, "--loop-id", LOOP_ID,
        "--num-targets", "2", "--rounds", "1", "--samples-per-target", "3", "--steps", "10",
        "--base-checkpoint", str(CHECKPOINT), "--max-selected", "4", "--fine-tune-steps", "2",
        "--batch-size", "8", "--held-out", str(data_dir / "perov_5" / "val.csv"),
        "--held-out-size", "4", "--eval-steps", "10", "--min-improvement", "-1",
        "--state-dir", str(tmp_path / "loops"), "--storage-uri", str(stack.store),
        "--out", str(tmp_path / "report"), "--ingest", stack.ingest, "--scorer", stack.scorer,
        "--sampler", stack.sampler, "--trainer", stack.trainer,
    ]  # fmt: skip


def _journal(tmp_path) -> dict:
    path = tmp_path / "loops" / LOOP_ID / "journal.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _wait_for_training(proc, tmp_path, timeout: float = 600.0) -> dict:
    """The journal once round 1's training run is recorded (the loop is then mid-training)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rounds = _journal(tmp_path).get("rounds", [])
        if rounds and rounds[0].get("training_run_id"):
            return rounds[0]
        assert proc.poll() is None, f"the loop ended early: rc {proc.returncode}"
        time.sleep(0.2)
    raise AssertionError("round 1 never reached training")


@pytest.mark.slow
def test_a_loop_killed_mid_round_resumes_without_duplicates(loop_stack, data_dir, tmp_path):
    env = {**os.environ, "AUTOPERI_DATA_DIR": str(data_dir)}
    command = _command(loop_stack, data_dir, tmp_path)
    log = (tmp_path / "first.log").open("w")
    first = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        before = _wait_for_training(first, tmp_path)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    assert "ingesting" in before["done"] and "training" not in before["done"]
    assert before["num_selected"] > 0

    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    journal = _journal(tmp_path)
    [rnd] = journal["rounds"]
    assert journal["state"] == "succeeded" and rnd["stage"] == "done" and rnd["merged"]
    assert rnd["training_run_id"] == before["training_run_id"]
    runs = TrainerClient(loop_stack.trainer).runs({"loop_id": LOOP_ID})
    assert [r.run_id for r in runs] == [before["training_run_id"]]

    # the selection an uninterrupted loop makes from the round's scores
    files = tmp_path / "loops" / LOOP_ID / "round-1"
    rows = json.loads((files / "scores.json").read_text())
    candidates = Candidates.read(files / "candidates.pb")
    criteria = SelectionCriteria(True, True, None, 4, 0.1)  # the CLI's (no hull here)
    scores = candidate_scores(rows, per_composition=True)
    uninterrupted = select_candidates(scores, criteria, fingerprint_fn(candidates))
    assert rnd["selected"] == list(uninterrupted.selected)
    assert rnd["selected_hashes"] == [candidates[i].content_hash() for i in rnd["selected"]]
    expected = sorted(set(loop_stack.seed_hashes) | set(rnd["selected_hashes"]))
    assert len(expected) == len(loop_stack.seed_hashes) + len(rnd["selected_hashes"])
    ingest = IngestClient(loop_stack.ingest)
    for ref in ("main", rnd["branch"]):
        assert ingest.content_hashes(DATASET, ref) == expected
    assert ingest.branches(DATASET)["main"].num_crystals == len(expected)

    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]  # a finished loop: nothing more to do
    assert _journal(tmp_path)["rounds"] == journal["rounds"]
    assert len(TrainerClient(loop_stack.trainer).runs({"loop_id": LOOP_ID})) == 1
    assert ingest.content_hashes(DATASET, "main") == expected

    report = tmp_path / "report"
    assert (report / "README.md").exists() and (report / "round-1.md").exists()
    assert (report / "round-1_counts.png").stat().st_size > 1000
    assert rnd["training_run_id"] in (report / "README.md").read_text()
