"""The trainer server over a real socket, without Ray: bad requests get INVALID_ARGUMENT with a
reason, unknown runs NOT_FOUND, and nothing is queued for a rejected request. A request naming a
host path (a shard uri outside the store, a dataset or warm start by directory) is refused, and
no reply repeats a host path."""

import os

import grpc
import pytest
import yaml
from autoperi.common.v1 import common_pb2
from autoperi.training.v1 import training_pb2 as pb
from featurestore_svc import FeatureStoreDeps, FeatureStoreSettings
from featurestore_svc import create_server as create_featurestore
from grpc_health.v1 import health_pb2, health_pb2_grpc
from ingest_svc.testing import serving
from storage import LocalObjectStore, LocalVersionStore

from trainer_svc import SERVICE_NAME
from trainer_svc.client import stub
from trainer_svc.testing import TINY_CONFIG, serving_trainer, tiny_config_yaml

SHA = "ab" * 32


@pytest.fixture(scope="module")
def trainer(tmp_path_factory):
    root = tmp_path_factory.mktemp("trainer")
    objects = LocalObjectStore(root / "store", durable=False)
    fs_settings = FeatureStoreSettings(host="127.0.0.1", port=0, log_json=False)
    fs_deps = FeatureStoreDeps(objects, LocalVersionStore(objects))
    with (
        serving(lambda: create_featurestore(fs_settings, fs_deps)) as fs,
        serving_trainer(objects, root, fs.address) as server,
        grpc.insecure_channel(server.address) as channel,
    ):
        yield server, stub(channel), channel


def _error(trainer, **fields):
    _, client, _ = trainer
    with pytest.raises(grpc.RpcError) as info:
        client.StartRun(pb.StartRunRequest(**fields), timeout=30)
    return info.value.code(), info.value.details()


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"config_yaml": "train: [1"}, "config_yaml is not valid YAML"),
        ({"config_yaml": "- 1\n- 2"}, "config_yaml must be a mapping"),
        ({"config_yaml": "train: {epochs: 3}"}, "invalid config: train.epochs: Extra inputs"),
        ({"config_yaml": "backbone: {hidden: -1}"}, "invalid config: backbone.hidden"),
        ({"batch_size": 0}, "invalid config: train.batch_size"),
        (
            {"batch_size": 15, "resources": pb.Resources(num_workers=2)},
            "batch_size 15 is not a multiple of num_workers 2",
        ),
        ({"train_shards": [common_pb2.ObjectRef(uri="http://x", sha256=SHA)]}, "file:// or s3://"),
        ({"train_shards": [common_pb2.ObjectRef(uri="file:///x", sha256="12")]}, "64 lower-case"),
        (
            {"train_shards": [common_pb2.ObjectRef(uri="file:///no/such/shard", sha256=SHA)]},
            "train_shards[0].uri does not name a blob of this service's object store",
        ),
        ({}, "a run needs its data: train_dataset"),
        ({"train_dataset": common_pb2.DatasetRef(dataset="no-such-set")}, "unknown dataset"),
        ({"train_dataset": common_pb2.DatasetRef(dataset="Bad Name!")}, "not a valid dataset"),
        ({"resume_from_checkpoint_id": "xyz"}, "resume_from_checkpoint_id must be 64"),
    ],
)
def test_bad_requests_are_invalid_argument_with_a_reason(trainer, fields, reason):
    code, details = _error(
        trainer, config_yaml=fields.pop("config_yaml", tiny_config_yaml()), **fields
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and reason in details, details
    assert "Traceback" not in details


def test_unknown_runs_and_checkpoints_are_not_found(trainer, data_dir):
    _, client, channel = trainer
    code, details = _error(trainer, config_yaml=tiny_config_yaml(), resume_from_checkpoint_id=SHA)
    assert code == grpc.StatusCode.NOT_FOUND and SHA in details
    assert client.ListRuns(pb.ListRunsRequest(), timeout=10).runs == []  # nothing was queued
    health = health_pb2_grpc.HealthStub(channel)
    reply = health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def _shards(uri: str, field: str = "train_shards") -> dict:
    return {field: [common_pb2.ObjectRef(uri=uri, sha256=SHA, size_bytes=10)]}


def _config(section: str, **fields) -> dict:
    return {"config_yaml": yaml.safe_dump({**TINY_CONFIG, section: fields})}


def _escape_link(store) -> str:
    """A symlink inside the store root to /etc/passwd (what a planted link would be)."""
    link = store / "escape"
    if not link.is_symlink():
        os.symlink("/etc/passwd", link)
    return link.as_uri()


# (case id, request fields from (store root, data dir), expected reason)
PATH_CASES = [
    ("shard-host-file", lambda st, dd: _shards("file:///etc/passwd"), "train_shards[0].uri"),
    (
        "shard-traversal-out-of-store",
        lambda st, dd: _shards(f"file://{st}{'/..' * 30}/etc/hostname"),
        "train_shards[0].uri does not name a blob",
    ),
    ("shard-symlink-out", lambda st, dd: _shards(_escape_link(st), "val_shards"), "val_shards[0]"),
    (
        "shard-other-blob",
        lambda st, dd: _shards(f"file://{st}/blobs/sha256/cd/{'cd' * 32}"),
        "does not name a blob of this service's object store",
    ),
    (
        "shard-other-store",
        lambda st, dd: _shards(f"s3://elsewhere/blobs/sha256/ab/{SHA}"),
        "train_shards[0].uri does not name a blob",
    ),
    ("dataset-absolute", lambda st, dd: _config("data", dataset="/etc"), "data.dataset"),
    ("dataset-relative", lambda st, dd: _config("data", dataset="../../x"), "not a dataset name"),
    ("dataset-data-dir", lambda st, dd: _config("data", dataset=str(dd)), "not a dataset name"),
    (
        "split-traversal",
        lambda st, dd: _config("data", train_split="../../../etc/passwd"),
        "config data.train_split",
    ),
    (
        "init-from-host-dir",
        lambda st, dd: _config("train", **TINY_CONFIG["train"], init_from="/etc"),
        "train.init_from cannot be set in a request",
    ),
    (
        "init-from-store",
        lambda st, dd: _config("train", **TINY_CONFIG["train"], init_from=str(st)),
        "resume_from_checkpoint_id",
    ),
    (
        "train-dataset-path",
        lambda st, dd: {"train_dataset": common_pb2.DatasetRef(dataset="../../etc/passwd")},
        "not a valid dataset name",
    ),
]


@pytest.mark.parametrize(
    ("fields", "reason"), [c[1:] for c in PATH_CASES], ids=[c[0] for c in PATH_CASES]
)
def test_host_paths_in_a_request_are_refused_and_never_echoed(trainer, data_dir, fields, reason):
    server, client, _ = trainer
    store = server.core.objects.root
    code, details = _error(
        trainer, **{"config_yaml": tiny_config_yaml(), **fields(store, data_dir)}
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and reason in details, details
    for host_path in (str(store), str(store.parent), str(data_dir), "/etc", "Traceback"):
        assert host_path not in details, details
    assert client.ListRuns(pb.ListRunsRequest(), timeout=10).runs == []


def test_a_resume_id_naming_a_blob_that_is_no_checkpoint_is_invalid_argument(trainer):
    server, _, _ = trainer
    not_a_manifest = server.core.objects.put_blob(b"[1, 2, 3]")
    code, details = _error(
        trainer, config_yaml=tiny_config_yaml(), resume_from_checkpoint_id=not_a_manifest
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT, details
    assert f"resume_from_checkpoint_id {not_a_manifest} is not a checkpoint manifest" in details


def _by_run_id(client, rpc: str, run_id: str):
    """Call `rpc` about `run_id` (the streams to their end: they must fail, not end OK)."""
    if rpc == "GetRun":
        return client.GetRun(pb.GetRunRequest(run_id=run_id), timeout=10)
    if rpc == "CancelRun":
        return client.CancelRun(pb.CancelRunRequest(run_id=run_id), timeout=10)
    request = pb.StreamMetricsRequest(run_id=run_id, follow=rpc.endswith("follow"))
    return list(client.StreamMetrics(request, timeout=10))


@pytest.mark.parametrize(
    ("run_id", "code", "reason"),
    [
        ("", grpc.StatusCode.INVALID_ARGUMENT, "run_id is required"),
        ("nope", grpc.StatusCode.NOT_FOUND, "no run 'nope'"),
    ],
    ids=["empty", "unknown"],
)
@pytest.mark.parametrize("rpc", ["GetRun", "CancelRun", "StreamMetrics", "StreamMetrics-follow"])
def test_bad_run_ids_are_refused_alike_by_unary_and_streaming_rpcs(
    trainer, run_id, code, reason, rpc
):
    _, client, _ = trainer
    with pytest.raises(grpc.RpcError) as info:
        _by_run_id(client, rpc, run_id)
    assert info.value.code() == code and reason in info.value.details()
    assert "Traceback" not in info.value.details()
