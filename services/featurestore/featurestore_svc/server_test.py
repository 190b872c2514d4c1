"""The featurestore over a real socket: shards equal the featuriser's, one build per key."""

import hashlib
import json
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import grpc
import numpy as np
import pytest
import torch
from autoperi.common.v1 import common_pb2
from autoperi.featurestore.v1 import featurestore_pb2 as pb
from autoperi.featurestore.v1 import featurestore_pb2_grpc
from featurize import FeaturizerConfig, featurize_split, load_shard
from grpc_health.v1 import health_pb2, health_pb2_grpc
from ingest_svc.testing import serving
from storage import LocalObjectStore, LocalVersionStore

from featurestore_svc import (
    SERVICE_NAME,
    FeatureStoreCore,
    FeatureStoreDeps,
    FeatureStoreSettings,
    create_server,
)
from featurestore_svc.conftest import NUM_CRYSTALS, store_dataset

PARAMS = json.dumps({"cutoff": 5.0, "shard_size": 20})


@pytest.fixture
def server(stores):
    objects, versions, _ = stores
    settings = FeatureStoreSettings(host="127.0.0.1", port=0, log_json=False)
    with serving(lambda: create_server(settings, FeatureStoreDeps(objects, versions))) as srv:
        yield srv


def _request(dataset="mp20-small", params=PARAMS, kinds=()):
    return pb.BuildFeaturesRequest(
        dataset=common_pb2.DatasetRef(dataset=dataset),
        featurizer=pb.FeaturizerConfig(name="periodic", params_json=params),
        kinds=list(kinds),
    )


def _build(address, request):
    with grpc.insecure_channel(address) as channel:
        stub = featurestore_pb2_grpc.FeatureStoreServiceStub(channel)
        events = list(stub.BuildFeatures(request, timeout=600))
    assert all(e.HasField("progress") for e in events[:-1])
    return events[-1].feature_set


def read_verified(shard) -> bytes:
    """The shard's bytes from its file:// URI, checked against its sha256."""
    data = Path(urlsplit(shard.object.uri).path).read_bytes()
    assert hashlib.sha256(data).hexdigest() == shard.object.sha256
    assert len(data) == shard.object.size_bytes
    return data


def assert_same_shards(served, direct_paths, tmp_path):
    """Served shards hold what the featuriser writes for the same crystals."""
    assert len(served) == len(direct_paths)
    for index, (shard, path) in enumerate(zip(served, direct_paths, strict=True)):
        local = tmp_path / f"served-{index}.pt"
        local.write_bytes(read_verified(shard))
        got, want = load_shard(local), load_shard(path)
        assert got.keys() == want.keys()
        for key, value in want.items():
            if isinstance(value, torch.Tensor):
                assert torch.allclose(got[key].double(), value.double(), atol=1e-8), key
            elif isinstance(value, dict):
                for name in value:
                    assert torch.allclose(got[key][name], value[name], equal_nan=True)
            else:
                assert got[key] == value, key


def test_shards_equal_the_featuriser_and_statistics_match_pymatgen(server, mp20_subset, tmp_path):
    feature_set = _build(server.address, _request())
    shards, stats = feature_set.artifacts
    assert shards.state == pb.BUILD_STATE_READY and stats.state == pb.BUILD_STATE_READY
    ordered = sorted(mp20_subset, key=lambda c: c.content_hash())
    config = FeaturizerConfig(**json.loads(PARAMS))
    direct = featurize_split(ordered, tmp_path / "direct", config)
    assert_same_shards(shards.shards, direct.shard_paths, tmp_path)
    assert [s.first_index for s in shards.shards] == [0, 20, 40]
    lattices = [c.canonical().to_pymatgen().lattice for c in ordered]  # the stored cells
    stats_msg = feature_set.statistics
    assert stats_msg.num_crystals == NUM_CRYSTALS
    assert stats_msg.a.mean == pytest.approx(np.mean([lat.abc[0] for lat in lattices]), rel=1e-9)
    assert stats_msg.gamma.max == pytest.approx(max(lat.angles[2] for lat in lattices))
    assert stats_msg.num_atoms == sum(c.num_atoms for c in ordered)
    assert stats_msg.neighbors_per_atom.count == stats_msg.num_atoms


def test_two_concurrent_requests_build_once(server, monkeypatch):
    from featurestore_svc import _core

    calls, started = [], threading.Event()

    def slow_build(*args):  # counts featuriser runs, and holds the build until both RPCs are in
        calls.append(1)
        started.set()
        time.sleep(1.0)
        return real_build(*args)

    real_build = _core.build_tensors
    monkeypatch.setattr(_core, "build_tensors", slow_build)
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(_build(server.address, _request())))
        for _ in range(2)
    ]
    threads[0].start()
    assert started.wait(timeout=120)  # the first build is running when the second RPC arrives
    threads[1].start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1 and server.core.builds_started == 1
    first, second = (r.artifacts[0].shards for r in results)
    assert [s.object.sha256 for s in first] == [s.object.sha256 for s in second]
    _build(server.address, _request())  # served from the store
    assert len(calls) == 1


def test_get_features_does_not_wait_and_lookup_only_builds_nothing(server):
    with grpc.insecure_channel(server.address) as channel:
        stub = featurestore_pb2_grpc.FeatureStoreServiceStub(channel)
        fields = {"dataset": common_pb2.DatasetRef(dataset="mp20-small")}
        lookup = stub.GetFeatures(pb.GetFeaturesRequest(**fields, lookup_only=True), timeout=30)
        assert [a.state for a in lookup.feature_set.artifacts] == [pb.BUILD_STATE_MISSING] * 2
        assert server.core.builds_started == 0
        started = stub.GetFeatures(pb.GetFeaturesRequest(**fields), timeout=30)
        states = {a.state for a in started.feature_set.artifacts}
        assert states <= {pb.BUILD_STATE_QUEUED, pb.BUILD_STATE_RUNNING, pb.BUILD_STATE_READY}
        health = health_pb2_grpc.HealthStub(channel)
        reply = health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


@pytest.fixture(scope="module")
def small_server(tmp_path_factory, mp20_subset):
    """A server over a store holding 'mp20-small' (two crystals): for requests it refuses."""
    objects = LocalObjectStore(tmp_path_factory.mktemp("refusing") / "store", durable=False)
    versions = LocalVersionStore(objects)
    store_dataset(versions, "mp20-small", mp20_subset[:2])
    settings = FeatureStoreSettings(host="127.0.0.1", port=0, log_json=False)
    with serving(lambda: create_server(settings, FeatureStoreDeps(objects, versions))) as srv:
        yield srv


def _call(address: str, rpc: str, request: pb.BuildFeaturesRequest):
    """GetFeatures (starting builds, as BuildFeatures does) or BuildFeatures to its end, with
    the same fields (a stream must fail, not end OK)."""
    with grpc.insecure_channel(address) as channel:
        stub = featurestore_pb2_grpc.FeatureStoreServiceStub(channel)
        if rpc == "BuildFeatures":
            return list(stub.BuildFeatures(request, timeout=60))
        fields = {"dataset": request.dataset, "featurizer": request.featurizer}
        return stub.GetFeatures(pb.GetFeaturesRequest(**fields, kinds=request.kinds), timeout=60)


INVALID, NOT_FOUND = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND
BAD_REQUESTS = {  # case id: (request, status, reason)
    "no-dataset": (_request(dataset=""), INVALID, "the request names no dataset"),
    "dataset-name": (_request(dataset="Bad Name!"), INVALID, "invalid dataset name 'Bad Name!'"),
    "unknown-dataset": (_request(dataset="no-such-set"), NOT_FOUND, "no dataset 'no-such-set'"),
    "unknown-ref": (
        pb.BuildFeaturesRequest(dataset=common_pb2.DatasetRef(dataset="mp20-small", ref="nope")),
        NOT_FOUND,
        "ref 'nope'",
    ),
    "featuriser": (
        pb.BuildFeaturesRequest(
            dataset=common_pb2.DatasetRef(dataset="mp20-small"),
            featurizer=pb.FeaturizerConfig(name="soap"),
        ),
        INVALID,
        "unknown featuriser 'soap'",
    ),
    "params-json": (_request(params="[1"), INVALID, "params_json is not valid JSON"),
    "params-array": (_request(params="[1]"), INVALID, "params_json must be a JSON object"),
    "params-unknown": (
        _request(params='{"radius": 3}'),
        INVALID,
        "unknown featuriser parameter(s): radius",
    ),
    "params-type": (_request(params='{"cutoff": "far"}'), INVALID, "cutoff must be a float"),
    "params-value": (_request(params='{"cutoff": -1}'), INVALID, "cutoff must be positive"),
    "kind": (_request(kinds=[99]), INVALID, "unknown feature kind(s): [99]"),
}


@pytest.mark.parametrize("case", BAD_REQUESTS)
@pytest.mark.parametrize("rpc", ["GetFeatures", "BuildFeatures"])
def test_bad_requests_are_refused_alike_by_get_and_build(small_server, case, rpc):
    request, status, reason = BAD_REQUESTS[case]
    with pytest.raises(grpc.RpcError) as info:
        _call(small_server.address, rpc, request)
    assert info.value.code() == status and reason in info.value.details(), info.value.details()
    assert "Traceback" not in info.value.details()
    assert small_server.core.builds_started == 0


def _named(dataset="mp20-small", ref="", name="periodic", params="{}"):
    return pb.BuildFeaturesRequest(
        dataset=common_pb2.DatasetRef(dataset=dataset, ref=ref),
        featurizer=pb.FeaturizerConfig(name=name, params_json=params),
    )


# (case id, request from (store root, data dir), the reason): nothing a request names is a place
PATH_CASES = [
    ("dataset-absolute", lambda st, dd: _named("/etc"), "invalid dataset name"),
    ("dataset-relative", lambda st, dd: _named("../x"), "paths and URIs are not accepted"),
    ("dataset-file-uri", lambda st, dd: _named("file:///etc/passwd"), "invalid dataset name"),
    ("dataset-store-root", lambda st, dd: _named(str(st)), "invalid dataset name"),
    ("dataset-data-dir", lambda st, dd: _named(str(dd / "mp_20")), "invalid dataset name"),
    ("dataset-traversal", lambda st, dd: _named("mp20-small/../../etc"), "invalid dataset"),
    ("ref-traversal", lambda st, dd: _named(ref="../../../etc/passwd"), "is not a branch, tag"),
    ("ref-absolute", lambda st, dd: _named(ref="/etc"), "ref (path-like value, not repeated)"),
    ("ref-file-uri", lambda st, dd: _named(ref=f"file://{st}"), "paths and URIs are not"),
    ("ref-below-a-branch", lambda st, dd: _named(ref="main/../../x"), "is not a branch, tag"),
    ("featuriser-path", lambda st, dd: _named(name="/etc/passwd"), "unknown featuriser"),
    ("featuriser-uri", lambda st, dd: _named(name=f"file://{st}/x"), "unknown featuriser"),
    (
        "param-named-by-a-path",
        lambda st, dd: _named(params=json.dumps({str(st / "x"): 1})),
        "unknown featuriser parameter(s): (path-like value, not repeated)",
    ),
    (
        "param-output-dir",
        lambda st, dd: _named(params=json.dumps({"output_dir": "/etc"})),
        "unknown featuriser parameter(s): output_dir",
    ),
    (
        "param-value-a-path",
        lambda st, dd: _named(params=json.dumps({"cutoff": str(dd)})),
        "featuriser parameter cutoff must be a float",
    ),
    (
        "param-value-a-list",
        lambda st, dd: _named(params=json.dumps({"shard_size": ["../../etc"]})),
        "featuriser parameter shard_size must be a int",
    ),
]


@pytest.mark.parametrize(
    ("request_of", "reason"), [c[1:] for c in PATH_CASES], ids=[c[0] for c in PATH_CASES]
)
@pytest.mark.parametrize("rpc", ["GetFeatures", "BuildFeatures"])
def test_host_paths_in_a_request_are_refused_and_never_echoed(
    small_server, data_dir, tmp_path, request_of, reason, rpc
):
    store = small_server.core.objects.root
    with pytest.raises(grpc.RpcError) as info:
        _call(small_server.address, rpc, request_of(store, data_dir))
    details = info.value.details()
    assert info.value.code() == INVALID and reason in details, details
    for host_path in (str(store), str(store.parent), str(data_dir), str(tmp_path), "/etc"):
        assert host_path not in details, details
    assert "Traceback" not in details and "file:" not in details
    assert small_server.core.builds_started == 0


def test_an_unimplemented_kind_fails_its_artifact(server):
    embeddings = _build(server.address, _request(kinds=[pb.FEATURE_KIND_EMBEDDINGS]))
    [artifact] = embeddings.artifacts
    assert artifact.state == pb.BUILD_STATE_FAILED and artifact.error.code == "unimplemented"


@pytest.mark.slow
def test_reference_energies_are_a_hull_reference_of_the_commit(server, stores, tmp_path):
    """One JSON hull reference: a row per crystal in commit order, CHGNet energies under the
    evaluation's protocol (relaxed no higher than the single point), naming the commit; asked
    again, it is served from the store."""
    from autoperi_eval import HullReference, RelaxSettings, potential_protocol

    _, _, commit = stores
    request = _request(kinds=[pb.FEATURE_KIND_REFERENCE_ENERGIES])
    [artifact] = _build(server.address, request).artifacts
    assert artifact.state == pb.BUILD_STATE_READY, artifact.error
    [shard] = artifact.shards
    document = json.loads(read_verified(shard))
    hashes = [row["crystal_hash"] for row in document["results"]]
    assert len(hashes) == NUM_CRYSTALS and hashes == sorted(hashes)
    assert document["sources"] == [f"mp20-small@{commit}"]
    assert document["protocol"] == potential_protocol(RelaxSettings())
    path = tmp_path / "hull.json"
    path.write_text(json.dumps(document))
    reference = HullReference.read(path)
    assert len(reference.compositions) == NUM_CRYSTALS
    assert (reference.e_relaxed <= reference.e_single_point + 1e-3).all()
    builds = server.core.builds_started
    [again] = _build(server.address, request).artifacts
    assert again.shards[0].object.sha256 == shard.object.sha256
    assert server.core.builds_started == builds


def test_a_missing_store_object_is_not_found(server, stores, monkeypatch):
    """No RPC path of today lets ObjectNotFound escape (the core catches it where it reads), so
    the real store's error is injected where an RPC reads state: it must be NOT_FOUND, not
    INTERNAL."""
    objects, _, _ = stores

    def state_of_a_deleted_manifest(request):
        return objects.get_bytes("features/manifests/deleted.json")

    monkeypatch.setattr(server.core, "state", state_of_a_deleted_manifest)
    with grpc.insecure_channel(server.address) as channel:
        stub = featurestore_pb2_grpc.FeatureStoreServiceStub(channel)
        request = pb.GetFeaturesRequest(
            dataset=common_pb2.DatasetRef(dataset="mp20-small"), lookup_only=True
        )
        with pytest.raises(grpc.RpcError) as info:
            stub.GetFeatures(request, timeout=30)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert "deleted.json" in info.value.details()


def test_store_lease_keeps_two_processes_from_both_building(stores):
    objects, versions, commit = stores
    from featurestore_svc import FeatureRequest, resolve_config

    request = FeatureRequest("mp20-small", commit, resolve_config("", "{}"), ("tensor_shards",))
    cores = [FeatureStoreCore(objects, versions, poll_s=0.05) for _ in range(2)]
    futures = [future for core in cores for future in core.ensure(request)]
    manifests = [future.result(timeout=600) for future in futures]
    assert sum(core.builds_started for core in cores) == 1
    assert manifests[0]["artifacts"] == manifests[1]["artifacts"]
