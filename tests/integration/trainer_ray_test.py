"""The trainer service with real 2-worker Ray Train runs on Perov-5 data.

(1) shards from the featurestore -> SUCCEEDED, checkpoint manifest verifies, weights sample;
    the run is still answered by a restarted service;
(2) a worker process killed mid-run -> RECOVERING, resumed from the last checkpoint, SUCCEEDED;
(3) CancelRun stops a running (fine-tuning) run and a queued one; StartRun with the same
    request_id returns the same run;
(4) a worker failure with no restarts left ends the run FAILED with a one-line reason.
"""

import os
import signal
import time
from pathlib import Path

import grpc
import pytest
import yaml
from autoperi.training.v1 import training_pb2 as pb
from autoperi_model import Config, Generator, TrainingData, train
from featurestore_svc import FeatureStoreDeps, FeatureStoreSettings
from featurestore_svc import create_server as create_featurestore
from featurestore_svc.conftest import store_dataset
from ingest_svc.testing import serving
from storage import LocalObjectStore, LocalVersionStore
from trainer_svc import publish_checkpoint, read_shards
from trainer_svc.client import start_run, stream, stub, wait
from trainer_svc.testing import (
    perov_subset,
    serving_trainer,
    shard_refs,
    tiny_config_yaml,
    verified_checkpoint,
)

TWO_WORKERS = pb.Resources(num_workers=2)


@pytest.fixture(scope="module")
def crystals(data_dir):
    return perov_subset(data_dir, 128)


@pytest.fixture
def objects(tmp_path):
    return LocalObjectStore(tmp_path / "store", durable=False)


def _poll(client, run_id, predicate, timeout=240):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = client.GetRun(pb.GetRunRequest(run_id=run_id), timeout=10).run
        if predicate(run):
            return run
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} never got there: {run}")


def test_two_worker_run_from_featurestore_shards_succeeds_and_samples(
    ray_session, crystals, objects, tmp_path
):
    versions = LocalVersionStore(objects)
    commit = store_dataset(versions, "perov5-small", crystals)
    fs_settings = FeatureStoreSettings(host="127.0.0.1", port=0, log_json=False)
    fs_deps = FeatureStoreDeps(objects, versions)
    started = time.monotonic()
    with (
        serving(lambda: create_featurestore(fs_settings, fs_deps)) as fs,
        serving_trainer(objects, tmp_path, fs.address) as server,
        grpc.insecure_channel(server.address) as channel,
    ):
        run = start_run(
            channel,
            name="tiny",
            config_yaml=tiny_config_yaml(),
            train_dataset=("perov5-small", "main"),
            resources=TWO_WORKERS,
            seed=3,
        )
        assert run.state == pb.RUN_STATE_PENDING and run.spec.train_dataset.ref == commit
        assert "hidden: 32" in run.spec.config_yaml and "ema_decay" in run.spec.config_yaml
        run = wait(channel, run.run_id, timeout=600)
        events = list(stream(channel, run.run_id, follow=True, timeout=30))
    print(f"2-worker run of 6 steps: {time.monotonic() - started:.1f}s")
    assert run.state == pb.RUN_STATE_SUCCEEDED, run.error
    assert run.step == 6 and run.num_restarts == 0 and run.latest_metrics["loss"] > 0
    metrics = [e.metrics for e in events if e.HasField("metrics")]
    assert [m.step for m in metrics] == [1, 2, 3, 4, 5, 6] and metrics[0].learning_rate > 0
    checkpoints = [e.checkpoint for e in events if e.HasField("checkpoint")]
    assert [c.step for c in checkpoints] == [3, 6]
    assert events[-1].state_change.state == pb.RUN_STATE_SUCCEEDED
    assert run.latest_checkpoint.checkpoint_id == checkpoints[-1].checkpoint_id
    path = verified_checkpoint(objects, run.latest_checkpoint, tmp_path / "ck")
    samples = Generator.from_checkpoint(path).generate_csp(["SrTiO3"], 2, steps=2)
    assert [c.num_atoms for c in samples] == [5, 5]
    with (
        serving_trainer(objects, tmp_path) as restarted,
        grpc.insecure_channel(restarted.address) as channel,
    ):
        again = stub(channel).GetRun(pb.GetRunRequest(run_id=run.run_id), timeout=10).run
        replay = list(stream(channel, run.run_id, from_step=4, follow=False, timeout=10))
    assert again == run
    assert [e.metrics.step for e in replay if e.HasField("metrics")] == [4, 5, 6]


@pytest.mark.slow
def test_killed_worker_recovers_from_the_last_checkpoint(
    ray_session, crystals, objects, tmp_path, data_dir
):
    refs = shard_refs(objects, crystals, tmp_path / "cache")
    val_refs = shard_refs(objects, perov_subset(data_dir, 32, "val"), tmp_path / "val-cache")
    config = tiny_config_yaml(max_steps=100, checkpoint_every_steps=10, log_every_steps=2)
    started = time.monotonic()
    with (
        serving_trainer(objects, tmp_path) as server,
        grpc.insecure_channel(server.address) as channel,
    ):
        client = stub(channel)
        request = pb.StartRunRequest(
            config_yaml=config, train_shards=refs, val_shards=val_refs, resources=TWO_WORKERS
        )
        run_id = client.StartRun(request, timeout=60).run.run_id
        _poll(client, run_id, lambda r: r.latest_checkpoint.step >= 10)
        pids = server.core.worker_pids(run_id)
        assert set(pids) == {0, 1}
        os.kill(pids[1], signal.SIGKILL)
        killed_at = time.monotonic()
        run = wait(channel, run_id, timeout=600)
        events = list(stream(channel, run_id, follow=False, timeout=30))
        resumed = server.core.record(run_id).resumed_steps
    now = time.monotonic()
    print(f"kill/resume run: {now - started:.1f}s, {now - killed_at:.1f}s after the kill")
    assert run.state == pb.RUN_STATE_SUCCEEDED, run.error
    assert run.num_restarts >= 1 and resumed and resumed[0] >= 10
    states = [e.state_change.state for e in events if e.HasField("state_change")]
    assert pb.RUN_STATE_RECOVERING in states and states[-1] == pb.RUN_STATE_SUCCEEDED
    recovering = next(
        i for i, e in enumerate(events) if e.state_change.state == pb.RUN_STATE_RECOVERING
    )
    later = [e.metrics.step for e in events[recovering:] if e.HasField("metrics")]
    assert later and min(later) > resumed[0] > 0 and max(later) == 100
    verified_checkpoint(objects, run.latest_checkpoint, tmp_path / "ck")
    val_points = [e.metrics for e in events if e.HasField("metrics") and e.metrics.split == "val"]
    assert len(val_points) >= 10 and all(p.loss > 0 for p in val_points)
    best = min(val_points, key=lambda p: p.loss)
    assert run.best_checkpoint.metrics["val_loss"] == pytest.approx(best.loss)


def _stored_checkpoint(objects, refs, config_yaml: str, out: Path) -> str:
    """A 1-step checkpoint of the config trained here, published to the store; its id."""
    config = Config.model_validate(yaml.safe_load(config_yaml)).updated(
        train={"max_steps": 1, "progress": False}
    )
    shards = read_shards([{"uri": r.uri, "sha256": r.sha256} for r in refs], objects)
    train(config, TrainingData.from_shards(shards, [], "test"), out)
    return publish_checkpoint(objects, out, "seed-run", 1, 0, {})[0]


def test_cancel_and_idempotent_start(ray_session, crystals, objects, tmp_path):
    refs = shard_refs(objects, crystals[:64], tmp_path / "cache")
    config = tiny_config_yaml(max_steps=100_000, checkpoint_every_steps=1000)
    init_id = _stored_checkpoint(objects, refs, config, tmp_path / "init")
    with (
        serving_trainer(objects, tmp_path) as server,
        grpc.insecure_channel(server.address) as channel,
    ):
        client = stub(channel)
        request = pb.StartRunRequest(
            config_yaml=config,
            train_shards=refs,
            resources=TWO_WORKERS,
            request_id="req-1",
            labels={"loop": "l-1"},
            resume_from_checkpoint_id=init_id,  # fine-tuning: the workers start from its weights
        )
        first = client.StartRun(request, timeout=60).run
        assert client.StartRun(request, timeout=60).run.run_id == first.run_id
        _poll(client, first.run_id, lambda r: r.step >= 2)
        queued = client.StartRun(pb.StartRunRequest(config_yaml=config, train_shards=refs)).run
        assert queued.state == pb.RUN_STATE_PENDING  # one run at a time: it waits
        cancel = pb.CancelRunRequest(run_id=queued.run_id, reason="not needed")
        assert client.CancelRun(cancel, timeout=10).run.state == pb.RUN_STATE_CANCELLED
        cancel = pb.CancelRunRequest(run_id=first.run_id, reason="test")
        assert client.CancelRun(cancel, timeout=10).run.state == pb.RUN_STATE_CANCELLING
        assert client.CancelRun(cancel, timeout=10).run.state == pb.RUN_STATE_CANCELLING
        run = wait(channel, first.run_id, timeout=120)
        listed = client.ListRuns(pb.ListRunsRequest(labels={"loop": "l-1"}), timeout=10).runs
        by_state = pb.ListRunsRequest(states=[pb.RUN_STATE_CANCELLED], page_size=1)
        page = client.ListRuns(by_state, timeout=10)
        again = client.StartRun(request, timeout=60).run
        events = list(stream(channel, first.run_id, follow=True, timeout=30))
    assert run.state == pb.RUN_STATE_CANCELLED and 2 <= run.step < 100_000
    assert events[-1].state_change.state == pb.RUN_STATE_CANCELLED
    assert [r.run_id for r in listed] == [first.run_id] and again.state == pb.RUN_STATE_CANCELLED
    assert [r.run_id for r in page.runs] == [queued.run_id] and page.next_page_token == "1"


def test_a_run_without_restarts_left_fails_with_a_reason(ray_session, crystals, objects, tmp_path):
    refs = shard_refs(objects, crystals[:64], tmp_path / "cache")
    config = tiny_config_yaml(max_steps=100_000, checkpoint_every_steps=1000)
    with (
        serving_trainer(objects, tmp_path) as server,
        grpc.insecure_channel(server.address) as channel,
    ):
        client = stub(channel)
        request = pb.StartRunRequest(
            config_yaml=config, train_shards=refs, resources=TWO_WORKERS, max_failures=0
        )
        run_id = client.StartRun(request, timeout=60).run.run_id
        _poll(client, run_id, lambda r: r.step >= 2)
        os.kill(server.core.worker_pids(run_id)[0], signal.SIGKILL)
        run = wait(channel, run_id, timeout=300)
    print(f"failure reason: {run.error.message}")
    assert run.state == pb.RUN_STATE_FAILED and run.num_restarts == 0
    assert run.error.code == "training_failed" and "failed: " in run.error.message
    assert "Traceback" not in run.error.message and "\n" not in run.error.message
