"""Without Ray: the run state machine, the run store, and checkpoint manifests in a store."""

import json

import pytest
from autoperi.training.v1 import training_pb2 as pb
from storage import CorruptObject, LocalObjectStore, blob_key

from trainer_svc._objects import (
    fetch_checkpoint,
    names_blob,
    publish_checkpoint,
    read_ref,
    ref_exists,
)
from trainer_svc._runs import RunRecord
from trainer_svc._store import RunStore

MANIFEST = {"uri": "file:///m", "sha256": "cd" * 32, "size_bytes": 3, "media_type": "x"}


def _checkpoint(step, **metrics):
    return {
        "kind": "checkpoint",
        "step": step,
        "epoch": 0,
        "metrics": metrics,
        "checkpoint_id": f"{step:064x}",
        "manifest": MANIFEST,
        "time": 1.0,
    }


def _metrics(step):
    values = {"loss": 1.0 / step, "lr": 0.1}
    return {"kind": "metrics", "step": step, "epoch": 0, "values": values, "time": 1.0}


def test_state_machine_restarts_and_best_checkpoint():
    record = RunRecord(pb.Run(run_id="r", state=pb.RUN_STATE_PENDING))
    record.apply({"kind": "attempt", "attempt": 1, "step": None})
    for step in (1, 2):
        record.apply(_metrics(step))
    record.apply(_checkpoint(2, val_loss=0.5))
    record.apply({"kind": "failure", "message": "worker 1 failed: killed"})
    assert record.run.state == pb.RUN_STATE_RECOVERING
    record.apply({"kind": "attempt", "attempt": 2, "step": 2})
    record.apply(_metrics(3))
    record.apply(_checkpoint(4, val_loss=0.7))
    record.set_state(pb.RUN_STATE_SUCCEEDED, "done")
    record.set_state(pb.RUN_STATE_FAILED, "too late")  # terminal states are final
    run = record.run
    assert run.state == pb.RUN_STATE_SUCCEEDED and run.num_restarts == 1
    assert record.resumed_steps == [2] and run.step == 4
    assert run.latest_checkpoint.step == 4 and run.best_checkpoint.step == 2
    assert run.HasField("started") and run.HasField("finished")
    states = [e.state_change.state for _, e in record.events if e.HasField("state_change")]
    running, recovering = pb.RUN_STATE_RUNNING, pb.RUN_STATE_RECOVERING
    assert states == [running, recovering, running, pb.RUN_STATE_SUCCEEDED]
    events, index, terminal = record.wait_events(from_step=3, index=0, timeout=0)
    assert terminal and index == len(record.events)
    kinds = [e.WhichOneof("event") for e in events]
    assert kinds == ["metrics", "metrics", "checkpoint", "state_change"]
    assert events[1].metrics.split == "val" and events[1].metrics.loss == 0.7
    point = events[0].metrics
    assert point.loss == pytest.approx(1 / 3) and point.learning_rate == 0.1


def test_store_round_trips_runs_and_claims_request_ids_once(tmp_path):
    store = RunStore(LocalObjectStore(tmp_path, durable=False))
    record = RunRecord(pb.Run(run_id="r1", state=pb.RUN_STATE_PENDING))
    record.apply({"kind": "attempt", "attempt": 1, "step": None})
    record.apply(_metrics(1))
    store.save(record.run, record.events)
    [(run, events)] = store.load_all()
    assert run == record.run and events == record.events
    assert store.claim_request("req", "r1") == "r1"
    assert store.claim_request("req", "r2") == "r1"


def test_checkpoint_manifest_names_verified_files(tmp_path):
    objects = LocalObjectStore(tmp_path / "store", durable=False)
    source = tmp_path / "ck"
    source.mkdir()
    (source / "model.pt").write_bytes(b"weights")
    (source / "manifest.json").write_text("{}")
    ck_id, ref = publish_checkpoint(objects, source, "r1", 5, 1, {"loss": 0.5})
    assert ref["sha256"] == ck_id and read_ref(ref, objects) == objects.get_blob(ck_id)
    manifest = json.loads(objects.get_blob(ck_id))
    assert [f["path"] for f in manifest["files"]] == ["manifest.json", "model.pt"]
    with pytest.raises(ValueError, match="not in the object store"):
        read_ref({**ref, "sha256": "0" * 64}, objects)  # the uri names another blob
    out = fetch_checkpoint(objects, ck_id, tmp_path / "out")
    assert (out / "model.pt").read_bytes() == b"weights"
    objects.put_bytes(blob_key(manifest["files"][1]["sha256"]), b"tampered")
    with pytest.raises(CorruptObject):
        fetch_checkpoint(objects, ck_id, tmp_path / "again")


def test_a_symmetric_flow_run_reads_the_idealised_crystals(tmp_path, data_dir, monkeypatch):
    """The service's workers give a symmetric flow what `autoperi train` gives it: the shards'
    crystals idealised, with their space-group operations."""
    from autoperi_model import SymmetricCrystals

    from trainer_svc._worker import _data
    from trainer_svc.testing import perov_subset, shard_refs

    monkeypatch.setenv("AUTOPERI_CACHE_DIR", str(tmp_path / "cache"))
    objects = LocalObjectStore(tmp_path / "store", durable=False)
    refs = [
        {"uri": r.uri, "sha256": r.sha256, "size_bytes": r.size_bytes}
        for r in shard_refs(objects, perov_subset(data_dir, 12), tmp_path / "features")
    ]
    config = {"train_shards": refs, "val_shards": refs, "data_version": "v"}
    plain, symmetric = _data(config, objects, False), _data(config, objects, True)
    assert not isinstance(plain.train, SymmetricCrystals)
    assert isinstance(symmetric.train, SymmetricCrystals)
    assert len(symmetric.train) == len(plain.train) == 12


def test_refs_name_only_blobs_of_the_service_store(tmp_path):
    """A ref is the store's blob of its sha256 when its uri is where the store keeps it (also
    spelled with '..' or through a symlink); any other uri is refused and never opened."""
    objects = LocalObjectStore(tmp_path / "store", durable=False)
    digest = objects.put_blob(b"shard bytes")
    good = {"uri": objects.uri(blob_key(digest)), "sha256": digest, "size_bytes": 11}
    (tmp_path / "alias").symlink_to(objects.root / "blobs")
    secret = tmp_path / "secret"
    secret.write_bytes(b"shard bytes")  # same content and sha256, outside the store
    (objects.root / "escape").symlink_to(secret)
    inside = [
        good["uri"],
        f"file://{objects.root}/blobs/../blobs/sha256/{digest[:2]}/{digest}",
        f"file://localhost{objects.root}/blobs/sha256/{digest[:2]}/{digest}",
        f"file://{tmp_path}/alias/sha256/{digest[:2]}/{digest}",
    ]
    outside = [
        secret.as_uri(),
        (objects.root / "escape").as_uri(),
        f"file://{objects.root}/../secret",
        "file:///etc/passwd",
        f"file://otherhost{objects.root}/blobs/sha256/{digest[:2]}/{digest}",
        f"{good['uri']}?x=1",
        f"s3://bucket/blobs/sha256/{digest[:2]}/{digest}",
        "file:///%00",
    ]
    for uri in inside:
        assert names_blob({**good, "uri": uri}, objects), uri
    for uri in outside:
        assert not names_blob({**good, "uri": uri}, objects), uri
        with pytest.raises(ValueError) as info:
            read_ref({**good, "uri": uri}, objects)
        assert str(tmp_path) not in str(info.value) and "/etc" not in str(info.value)
    assert read_ref(good, objects) == b"shard bytes"
    assert ref_exists(good, objects) and not ref_exists({**good, "size_bytes": 12}, objects)
    assert not ref_exists({**good, "sha256": "ab" * 32}, objects)
