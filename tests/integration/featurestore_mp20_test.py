"""Ingest -> featurestore over gRPC: the served MP-20 shards equal the featuriser's own output.

The reference is `featurize.featurize_split` called directly on the crystals read from the same
CSV (first occurrence of each content hash, in content-hash order: the dataset's stable order).
"""

import hashlib
import json
from pathlib import Path
from urllib.parse import urlsplit

import grpc
import pytest
import torch
from autoperi.common.v1 import common_pb2
from autoperi.featurestore.v1 import featurestore_pb2 as pb
from autoperi.featurestore.v1 import featurestore_pb2_grpc
from autoperi.ingest.v1 import ingest_pb2_grpc
from autoperi_data import csv_rows, read_records
from featurestore_svc import FeatureStoreDeps, FeatureStoreSettings
from featurestore_svc import create_server as create_featurestore
from featurize import FeaturizerConfig, featurize_split, load_shard
from ingest_svc import IngestDeps, IngestSettings
from ingest_svc import create_server as create_ingest
from ingest_svc.client import csv_requests, header_request
from ingest_svc.testing import serving
from storage import LocalObjectStore, LocalVersionStore

PARAMS = {"cutoff": 6.0, "max_neighbors": 12, "shard_size": 1024}


def _head_csv(src: Path, rows: int | None, dst: Path) -> Path:
    if rows is None:
        return src
    dst.write_text("".join(csv_rows(src.read_text())[: rows + 1]))
    return dst


def _reference(path: Path, cache: Path):
    unique = {}
    for record in read_records(path):
        if record.crystal is not None:
            unique.setdefault(record.crystal.content_hash(), record.crystal)
    ordered = [unique[h] for h in sorted(unique)]
    return featurize_split(ordered, cache, FeaturizerConfig(**PARAMS))


def _serve_and_build(path: Path, root: Path):
    objects = LocalObjectStore(root, durable=False)
    versions = LocalVersionStore(objects)
    ingest_settings = IngestSettings(host="127.0.0.1", port=0, log_json=False)
    fs_settings = FeatureStoreSettings(host="127.0.0.1", port=0, log_json=False)
    with (
        serving(lambda: create_ingest(ingest_settings, IngestDeps(versions))) as ingest,
        serving(
            lambda: create_featurestore(fs_settings, FeatureStoreDeps(objects, versions))
        ) as fs,
        grpc.insecure_channel(ingest.address) as ingest_channel,
        grpc.insecure_channel(fs.address) as fs_channel,
    ):
        stream = [header_request("mp20-test", create_dataset=True), *csv_requests(path, 500)]
        reply = ingest_pb2_grpc.IngestServiceStub(ingest_channel).Ingest(iter(stream), timeout=3600)
        request = pb.BuildFeaturesRequest(
            dataset=common_pb2.DatasetRef(dataset="mp20-test", ref=reply.commit_id),
            featurizer=pb.FeaturizerConfig(name="periodic", params_json=json.dumps(PARAMS)),
        )
        stub = featurestore_pb2_grpc.FeatureStoreServiceStub(fs_channel)
        events = list(stub.BuildFeatures(request, timeout=3600))
        return reply, events[-1].feature_set


def _check(path: Path, tmp_path: Path) -> None:
    reply, feature_set = _serve_and_build(path, tmp_path / "store")
    direct = _reference(path, tmp_path / "direct")
    assert feature_set.dataset_commit == reply.commit_id
    shards = feature_set.artifacts[0]
    assert shards.state == pb.BUILD_STATE_READY
    assert sum(s.num_crystals for s in shards.shards) == direct.stats.num_crystals
    assert len(shards.shards) == len(direct.shard_paths)
    for index, (shard, want_path) in enumerate(zip(shards.shards, direct.shard_paths, strict=True)):
        data = Path(urlsplit(shard.object.uri).path).read_bytes()
        assert hashlib.sha256(data).hexdigest() == shard.object.sha256
        local = tmp_path / f"served-{index}.pt"
        local.write_bytes(data)
        got, want = load_shard(local), load_shard(want_path)
        assert got.keys() == want.keys()
        for key, value in want.items():
            if isinstance(value, torch.Tensor):
                assert got[key].shape == value.shape, key
                assert torch.allclose(got[key].double(), value.double(), atol=1e-8), key
            elif isinstance(value, dict):
                for name in value:
                    assert torch.allclose(got[key][name], value[name], equal_nan=True), name
            else:
                assert got[key] == value, key
    assert feature_set.statistics.num_crystals == direct.stats.num_crystals


def test_featurestore_serves_the_featurisers_shards_for_a_subset(data_dir, tmp_path):
    src = data_dir / "mp_20" / "assembled" / "test.csv"
    _check(_head_csv(src, 150, tmp_path / "head.csv"), tmp_path)


@pytest.mark.slow
def test_featurestore_serves_the_featurisers_shards_for_mp20_test(data_dir, tmp_path):
    _check(data_dir / "mp_20" / "assembled" / "test.csv", tmp_path)
