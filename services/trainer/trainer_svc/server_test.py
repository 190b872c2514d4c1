"""The trainer server over a real socket, without Ray: bad requests get INVALID_ARGUMENT with a
reason, unknown runs NOT_FOUND, and nothing is queued for a rejected request."""

import grpc
import pytest
from autoperi.common.v1 import common_pb2
from autoperi.training.v1 import training_pb2 as pb
from featurestore_svc import FeatureStoreDeps, FeatureStoreSettings
from featurestore_svc import create_server as create_featurestore
from grpc_health.v1 import health_pb2, health_pb2_grpc
from ingest_svc.testing import serving
from storage import LocalObjectStore, LocalVersionStore

from trainer_svc import SERVICE_NAME
from trainer_svc.client import stub
from trainer_svc.testing import serving_trainer, tiny_config_yaml

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
            "train_shards[0]: no object of that size at file:///no/such/shard",
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
    for call, request in (
        (client.GetRun, pb.GetRunRequest(run_id="nope")),
        (client.CancelRun, pb.CancelRunRequest(run_id="nope")),
    ):
        with pytest.raises(grpc.RpcError) as info:
            call(request, timeout=10)
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as info:
        list(client.StreamMetrics(pb.StreamMetricsRequest(run_id=""), timeout=10))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert client.ListRuns(pb.ListRunsRequest(), timeout=10).runs == []  # nothing was queued
    health = health_pb2_grpc.HealthStub(channel)
    reply = health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
