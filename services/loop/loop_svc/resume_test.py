"""The loop service killed (SIGKILL) mid-round and started again on the same state directory
resumes the loop by itself and finishes it without duplicated data: one training run, the
dataset = seed + the round's selection exactly, and the same outcome as an uninterrupted loop
(run after it on a copy of the seed dataset). `autoperi loop` is the client: started once, it
follows the loop across the restart and writes the report; run again, it changes nothing. Also:
`autoperi loop --in-process` runs a round without the service. Everything else runs in this
process (conftest's `loop_stack`)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from autoperi.loop.v1 import loop_pb2 as pb
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sampler_svc.testing import free_port
from trainer_svc.testing import perov_subset

from loop_svc._clients import IngestClient, TrainerClient
from loop_svc.client import get_loop
from loop_svc.conftest import CHECKPOINT, DATASET, NUM_SEED

LOOP_ID, WHOLE_ID, COPY = "killme", "whole", "loop-perov-copy"
SAME = (
    "selected", "selected_hashes", "num_generated", "num_scored", "num_valid", "num_novel",
    "num_selected", "num_ingested", "metric_before", "metric_after", "merged",
)  # fmt: skip


def _service(stack, state_dir: Path, port: int, log: Path) -> subprocess.Popen:
    """`autoperi serve loop` on `port`, over the stack's services; returns once it is SERVING."""
    command = [
        sys.executable, "-m", "autoperi_app.main", "serve", "loop", "--port", str(port),
        "--state-dir", str(state_dir), "--storage-uri", str(stack.store),
        "--ingest-address", stack.ingest, "--scorer-address", stack.scorer,
        "--sampler-address", stack.sampler, "--trainer-address", stack.trainer,
    ]  # fmt: skip
    env = {**os.environ, "AUTOPERI_LOOP_LOG_JSON": "false"}
    process = subprocess.Popen(command, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()[-3000:]
        try:
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                reply = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=2
                )
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                return process
        except grpc.RpcError:
            pass
        time.sleep(0.5)
    raise AssertionError("the loop service did not start: " + log.read_text()[-3000:])


def _cli(stack, data_dir, tmp_path, port, dataset=DATASET, loop_id=LOOP_ID) -> list[str]:
    return [
        sys.executable, "-m", "loop_svc.main", "--dataset", dataset, "--loop-id", loop_id,
        "--num-targets", "2", "--rounds", "1", "--samples-per-target", "3", "--steps", "10",
        "--base-checkpoint", str(CHECKPOINT), "--max-selected", "4", "--fine-tune-steps", "2",
        "--batch-size", "8", "--held-out", str(data_dir / "perov_5" / "val.csv"),
        "--held-out-dataset", "loop-perov-held-out", "--held-out-size", "4",
        "--eval-steps", "10", "--min-improvement", "-1", "--state-dir", str(tmp_path / "loops"),
        "--storage-uri", str(stack.store), "--out", str(tmp_path / f"report-{loop_id}"),
        "--address", f"127.0.0.1:{port}", "--ingest", stack.ingest,
    ]  # fmt: skip


def _journal(tmp_path, loop_id=LOOP_ID) -> dict:
    path = tmp_path / "loops" / loop_id / "journal.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _wait_for_training(cli, tmp_path, timeout: float = 900.0) -> dict:
    """Round 1 once its training run is recorded (the loop is then mid-training)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rounds = _journal(tmp_path).get("rounds", [])
        if rounds and rounds[0].get("training_run_id"):
            return rounds[0]
        assert cli.poll() is None, f"the client ended early: rc {cli.returncode}"
        time.sleep(0.2)
    raise AssertionError("round 1 never reached training")


@pytest.mark.slow
def test_a_killed_loop_service_resumes_its_loop_without_duplicates(loop_stack, data_dir, tmp_path):
    stack, port, log = loop_stack, free_port(), tmp_path / "service.log"
    env = {**os.environ, "AUTOPERI_DATA_DIR": str(data_dir)}
    service = _service(stack, tmp_path / "loops", port, log)
    cli_log = (tmp_path / "cli.log").open("w")
    cli = subprocess.Popen(
        _cli(stack, data_dir, tmp_path, port), env=env, stdout=cli_log, stderr=subprocess.STDOUT
    )
    try:
        before = _wait_for_training(cli, tmp_path)
    finally:
        service.send_signal(signal.SIGKILL)
        service.wait(timeout=30)
    assert "ingesting" in before["done"] and "training" not in before["done"]
    assert before["num_selected"] > 0
    service = _service(stack, tmp_path / "loops", port, log)  # resumes the loop by itself
    try:
        assert cli.wait(timeout=900) == 0, (tmp_path / "cli.log").read_text()[-3000:]
        journal = _journal(tmp_path)
        _check_no_duplicates(stack, journal, before)
        _check_report(tmp_path, journal)
        again = subprocess.run(
            _cli(stack, data_dir, tmp_path, port), env=env, capture_output=True, text=True,
            timeout=300,
        )  # fmt: skip
        assert again.returncode == 0, again.stderr[-3000:]  # finished: nothing more to do
        assert _journal(tmp_path)["rounds"] == journal["rounds"]
        assert len(TrainerClient(stack.trainer).runs({"loop_id": LOOP_ID})) == 1
        _check_same_as_uninterrupted(stack, data_dir, tmp_path, port, env, journal)
    finally:
        service.send_signal(signal.SIGTERM)
        service.wait(timeout=60)


def _check_no_duplicates(stack, journal: dict, before: dict) -> None:
    """One training run (the one started before the kill); dataset = seed + selection."""
    [rnd] = journal["rounds"]
    assert journal["state"] == "succeeded" and rnd["stage"] == "done" and rnd["merged"]
    assert rnd["training_run_id"] == before["training_run_id"]
    runs = TrainerClient(stack.trainer).runs({"loop_id": LOOP_ID})
    assert [r.run_id for r in runs] == [before["training_run_id"]]
    expected = sorted(set(stack.seed_hashes) | set(rnd["selected_hashes"]))
    assert len(expected) == len(stack.seed_hashes) + len(rnd["selected_hashes"])
    ingest = IngestClient(stack.ingest)
    for ref in ("main", rnd["branch"]):
        assert ingest.content_hashes(DATASET, ref) == expected
    assert ingest.branches(DATASET)["main"].num_crystals == len(expected)


def _check_report(tmp_path, journal: dict) -> None:
    report = tmp_path / f"report-{LOOP_ID}"
    assert (report / "README.md").exists() and (report / "round-1.md").exists()
    assert (report / "round-1_counts.png").stat().st_size > 1000
    assert journal["rounds"][0]["training_run_id"] in (report / "README.md").read_text()


def _check_same_as_uninterrupted(stack, data_dir, tmp_path, port, env, journal) -> None:
    """The same loop on a copy of the seed dataset, never interrupted, makes the same round."""
    seed = perov_subset(data_dir, NUM_SEED)
    IngestClient(stack.ingest).ingest(COPY, "main", "", seed, create_dataset=True, message="seed")
    command = _cli(stack, data_dir, tmp_path, port, dataset=COPY, loop_id=WHOLE_ID)
    whole = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert whole.returncode == 0, whole.stdout[-3000:] + whole.stderr[-3000:]
    [killed], [uninterrupted] = journal["rounds"], _journal(tmp_path, WHOLE_ID)["rounds"]
    for key in SAME:
        assert killed[key] == uninterrupted[key], key
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        assert get_loop(channel, WHOLE_ID).state == pb.LOOP_STATE_SUCCEEDED


@pytest.mark.slow
def test_the_in_process_mode_runs_a_round_without_the_service(loop_stack, data_dir, tmp_path):
    stack, dataset = loop_stack, "loop-perov-inproc"
    command = _cli(stack, data_dir, tmp_path, free_port(), dataset=dataset, loop_id="inproc")
    command += ["--in-process", "--scorer", stack.scorer, "--sampler", stack.sampler]
    command += ["--trainer", stack.trainer, "--seed-from", str(data_dir / "perov_5" / "train.csv")]
    command += ["--seed-size", str(NUM_SEED)]
    env = {**os.environ, "AUTOPERI_DATA_DIR": str(data_dir)}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    [rnd] = _journal(tmp_path, "inproc")["rounds"]
    assert rnd["stage"] == "done" and rnd["num_selected"] > 0
    assert len(TrainerClient(stack.trainer).runs({"loop_id": "inproc"})) == 1
