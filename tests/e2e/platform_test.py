"""The platform end to end over real sockets: ingest -> featurise -> train -> sample -> score.

256 Perov-5 train rows go through the ingest gRPC service onto the branch `e2e-train` of a
LocalVersionStore; the featurestore builds that commit's tensor shards; the trainer runs a tiny
model (hidden 32, 2 layers, batch 16, 6 steps) on 2 Ray Train workers, fetching the same shards
from the featurestore; its last checkpoint is materialised and deployed on the sampler (Ray Serve
gRPC ingress on the session's Ray); 4 compositions x 5 crystals are sampled (fixed seeds) and
scored by the scorer (CHGNet in a worker process) with novelty against the ingested branch.
Every server is in-process on port 0 (the Serve proxy on a free port) and stopped at the end.
"""

import contextlib
import itertools
import math
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import grpc
import pytest
from autoperi.common.v1 import common_pb2
from autoperi.featurestore.v1 import featurestore_pb2 as fs_pb
from autoperi.featurestore.v1 import featurestore_pb2_grpc
from autoperi.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from autoperi.scorer.v1 import scorer_pb2, scorer_pb2_grpc
from autoperi.training.v1 import training_pb2
from autoperi_model import read_manifest
from featurestore_svc import FeatureStoreDeps, FeatureStoreSettings
from featurestore_svc import create_server as create_featurestore
from ingest_svc import IngestDeps, IngestSettings
from ingest_svc import create_server as create_ingest
from ingest_svc.client import csv_requests, header_request
from ingest_svc.testing import serving
from sampler_svc import SamplerSettings
from sampler_svc.client import sample, sampler_info
from sampler_svc.testing import serving_sampler
from scorer_svc import ScorerDeps, ScorerSettings
from scorer_svc import create_server as create_scorer
from storage import LocalObjectStore, LocalVersionStore, sha256_bytes
from svc_kit import ServiceServer
from trainer_svc import shards_version
from trainer_svc.client import start_run, wait
from trainer_svc.testing import (
    perov_subset,
    serving_trainer,
    tiny_config_yaml,
    verified_checkpoint,
)
from xtal import Crystal
from xtal.convert import from_proto, to_proto

pytestmark = pytest.mark.e2e

DATASET, BRANCH = "perov5", "e2e-train"
NUM_ROWS, ROWS_PER_CHUNK = 256, 128
FEATURIZER = '{"shard_size": 64}'  # the featurestore's and the trainer's featuriser parameters
NUM_COMPOSITIONS, PER_COMPOSITION, STEPS, SEED = 4, 5, 10, 7


@dataclass
class Platform:
    """The running servers and the stores they share."""

    objects: LocalObjectStore
    ingest: ServiceServer
    featurestore: ServiceServer
    trainer: ServiceServer
    scorer: ServiceServer


@contextlib.contextmanager
def platform(root: Path) -> Iterator[Platform]:
    """Ingest, featurestore, trainer and scorer servers over one store under `root` (the scorer
    first: its worker loads CHGNet while the other stages run)."""
    objects = LocalObjectStore(root / "store", durable=False)
    versions = LocalVersionStore(objects)
    local = {"host": "127.0.0.1", "port": 0, "log_json": False}
    ingest = IngestSettings(**local)
    features = FeatureStoreSettings(**local)
    scorer = ScorerSettings(**local, max_batch_size=64)
    with (
        serving(lambda: create_scorer(scorer, ScorerDeps(versions))) as scorer_server,
        serving(lambda: create_ingest(ingest, IngestDeps(versions))) as ingest_server,
        serving(lambda: create_featurestore(features, FeatureStoreDeps(objects, versions))) as fs,
        serving_trainer(
            objects, root, fs.address, featurizer_params_json=FEATURIZER
        ) as trainer_server,
    ):
        yield Platform(objects, ingest_server, fs, trainer_server, scorer_server)


def _ingest(address: str, train_csv: Path, expected: list[Crystal]) -> tuple[str, list[Crystal]]:
    """The first NUM_ROWS rows of `train_csv` onto BRANCH; (commit id, crystals read back)."""
    chunks = list(csv_requests(train_csv, ROWS_PER_CHUNK))[: NUM_ROWS // ROWS_PER_CHUNK]
    header = header_request(
        DATASET, branch=BRANCH, create_dataset=True, create_branch_from="main", message="e2e"
    )
    hashes = {c.content_hash() for c in expected}
    with grpc.insecure_channel(address) as channel:
        stub = ingest_pb2_grpc.IngestServiceStub(channel)
        reply = stub.Ingest(iter([header, *chunks]), timeout=300)
        ref = common_pb2.DatasetRef(dataset=DATASET, ref=reply.commit_id)
        request = ingest_pb2.ReadCrystalsRequest(ref=ref, batch_size=100)
        stored = [c for batch in stub.ReadCrystals(request, timeout=60) for c in batch.crystals]
    assert (reply.num_received, reply.num_rejected) == (NUM_ROWS, 0), reply.rejected_records[:3]
    assert (reply.num_accepted, reply.num_duplicates) == (len(hashes), NUM_ROWS - len(hashes))
    assert reply.branch == BRANCH and len(reply.commit_id) > 0
    assert sorted(c.content_hash for c in stored) == sorted(hashes)
    assert {c.provenance.dataset_commit for c in stored} == {reply.commit_id}
    crystals = [from_proto(c) for c in stored]
    assert [c.content_hash() for c in crystals] == [c.content_hash for c in stored]
    return reply.commit_id, crystals


def _featurise(address: str, commit: str, num_crystals: int) -> list[dict]:
    """The commit's tensor shards (ObjectRef dicts), each read back and checked by sha256."""
    request = fs_pb.BuildFeaturesRequest(
        dataset=common_pb2.DatasetRef(dataset=DATASET, ref=commit),
        featurizer=fs_pb.FeaturizerConfig(name="periodic", params_json=FEATURIZER),
        kinds=[fs_pb.FEATURE_KIND_TENSOR_SHARDS],
    )
    with grpc.insecure_channel(address) as channel:
        stub = featurestore_pb2_grpc.FeatureStoreServiceStub(channel)
        feature_set = list(stub.BuildFeatures(request, timeout=600))[-1].feature_set
    assert feature_set.dataset_commit == commit
    [artifact] = feature_set.artifacts
    assert artifact.state == fs_pb.BUILD_STATE_READY, artifact.error
    assert [s.num_crystals for s in artifact.shards] == _split(num_crystals, 64)
    assert [s.first_index for s in artifact.shards] == list(range(0, num_crystals, 64))
    for shard in artifact.shards:
        data = Path(unquote(urlsplit(shard.object.uri).path)).read_bytes()
        assert (sha256_bytes(data), len(data)) == (shard.object.sha256, shard.object.size_bytes)
    return [{"uri": s.object.uri, "sha256": s.object.sha256} for s in artifact.shards]


def _split(n: int, size: int) -> list[int]:
    return [min(size, n - start) for start in range(0, n, size)]


def _train(server: ServiceServer, commit: str) -> training_pb2.Run:
    """A 6-step run of the tiny config on 2 workers over the branch (the featurestore's shards)."""
    with grpc.insecure_channel(server.address) as channel:
        run = start_run(
            channel,
            name="e2e",
            config_yaml=tiny_config_yaml(),
            train_dataset=(DATASET, BRANCH),
            resources=training_pb2.Resources(num_workers=2),
            seed=SEED,
        )
        assert run.spec.train_dataset.ref == commit  # the branch resolved to the ingested commit
        run = wait(channel, run.run_id, timeout=900)
    assert run.state == training_pb2.RUN_STATE_SUCCEEDED, run.error
    assert run.step == 6 and run.num_restarts == 0 and math.isfinite(run.latest_metrics["loss"])
    assert run.latest_checkpoint.step == 6
    return run


def _compositions(crystals: list[Crystal]) -> list[dict[str, int]]:
    """The cell compositions of the first NUM_COMPOSITIONS distinct formulas of `crystals`."""
    seen: dict[str, dict[str, int]] = {}
    for crystal in sorted(crystals, key=lambda c: c.content_hash()):
        seen.setdefault(crystal.formula, dict(Counter(crystal.symbols)))
    return list(seen.values())[:NUM_COMPOSITIONS]


def _sample(checkpoint: Path, weights_sha256: str, compositions: list[dict]) -> list[Crystal]:
    """PER_COMPOSITION crystals of each composition from the deployed checkpoint."""
    settings = SamplerSettings(app_name="sampler", log_level="WARNING", batch_wait_timeout_s=0.01)
    with serving_sampler(checkpoint, settings) as address:
        info = sampler_info(address)
        runs = [
            sample(address, comp, PER_COMPOSITION, STEPS, SEED + i)
            for i, comp in enumerate(compositions)
        ]
        again = sample(address, compositions[0], PER_COMPOSITION, STEPS, SEED)
    assert info.checkpoint_id == weights_sha256[:12] and info.supports_csp
    assert [len(r) for r in runs] == [PER_COMPOSITION] * len(compositions)
    for comp, crystals in zip(compositions, runs, strict=True):
        assert all(Counter(c.symbols) == Counter(comp) for c in crystals), comp
        assert all(c.provenance.generator == info.checkpoint_id for c in crystals)
    assert [c.content_hash() for c in again] == [c.content_hash() for c in runs[0]]  # seeded
    sampled = [c for r in runs for c in r]
    assert len({c.id for c in sampled}) == len(sampled)
    for crystal in sampled:  # the client's crystals survive another proto round trip
        assert from_proto(to_proto(crystal)).content_hash() == crystal.content_hash()
    return sampled


def _score(address: str, crystals: list[Crystal], commit: str) -> scorer_pb2.ScoreResponse:
    """Scores with novelty against BRANCH; the last crystal is an ingested one (not novel)."""
    request = scorer_pb2.ScoreRequest(
        crystals=[to_proto(c) for c in crystals],
        options=scorer_pb2.ScoreOptions(
            novelty_reference=common_pb2.DatasetRef(dataset=DATASET, ref=BRANCH)
        ),
    )
    with grpc.insecure_channel(address) as channel:
        reply = scorer_pb2_grpc.ScorerServiceStub(channel).Score(request, timeout=600)
    assert reply.novelty_reference_commit == commit
    assert [r.index for r in reply.results] == list(range(len(crystals)))
    for crystal, result in zip(crystals, reply.results, strict=True):
        assert not result.HasField("error"), result.error
        assert (result.crystal_id, result.content_hash) == (crystal.id, crystal.content_hash())
        assert math.isfinite(result.energy_per_atom) and result.HasField("novel")
        assert result.structure_valid == (result.min_distance > 0.5), result
    *_, known = reply.results
    assert known.novel is False and known.matched_content_hash == crystals[-1].content_hash()
    assert known.structure_valid
    return reply


def test_ingest_featurise_train_sample_score(ray_session, data_dir, tmp_path):
    expected = perov_subset(data_dir, NUM_ROWS)
    times = {"start": time.monotonic()}
    with platform(tmp_path) as p:
        times["servers"] = time.monotonic()
        commit, ingested = _ingest(p.ingest.address, data_dir / "perov_5" / "train.csv", expected)
        times["ingest"] = time.monotonic()
        shards = _featurise(p.featurestore.address, commit, len(ingested))
        times["featurise"] = time.monotonic()
        run = _train(p.trainer, commit)
        assert p.featurestore.core.builds_started == 1  # the trainer got the same build
        times["train"] = time.monotonic()
        path = verified_checkpoint(p.objects, run.latest_checkpoint, tmp_path / "checkpoint")
        manifest = read_manifest(path)
        assert manifest.data_version == shards_version(shards) and manifest.step == 6
        compositions = _compositions(ingested)
        sampled = _sample(path, manifest.weights_sha256, compositions)
        times["sample"] = time.monotonic()
        reply = _score(p.scorer.address, [*sampled, ingested[0]], commit)
        times["score"] = time.monotonic()
    novel = sum(r.novel for r in reply.results[:-1])
    valid = sum(r.structure_valid and r.composition_valid for r in reply.results[:-1])
    stages = list(times)
    print(
        "e2e stages (s): "
        + ", ".join(f"{b} {times[b] - times[a]:.1f}" for a, b in itertools.pairwise(stages))
        + f"; {novel}/{len(sampled)} novel, {valid}/{len(sampled)} valid"
    )
