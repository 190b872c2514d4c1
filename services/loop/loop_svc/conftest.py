"""Fixtures of the loop tests: every service the loop talks to, started in this process on real
sockets over one temporary store (ingest, featurestore, scorer, trainer on Ray Train, and the
sampler on Ray Serve), plus a small seeded Perov-5 dataset."""

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from storage import LocalObjectStore, LocalVersionStore

CHECKPOINT = Path(__file__).resolve().parents[3] / "checkpoints" / "perov_5_csp"
DATASET = "loop-perov"
NUM_SEED = 24
PLAIN = {"host": "127.0.0.1", "port": 0, "log_json": False}


@dataclass(frozen=True)
class Stack:
    """Addresses of the running services and the store root they share."""

    ingest: str
    scorer: str
    sampler: str
    trainer: str
    store: Path
    seed_hashes: tuple[str, ...]


def _sampler(ray_session):
    from sampler_svc import SamplerSettings
    from sampler_svc.testing import serving_sampler

    settings = SamplerSettings(app_name="sampler", log_level="WARNING", chunk_samples=8)
    return serving_sampler(CHECKPOINT, settings)


@dataclass(frozen=True)
class SeededStore:
    """A temporary store with ingest and scorer servers over it; `dataset` seeded on main."""

    objects: LocalObjectStore
    versions: LocalVersionStore
    ingest: str
    scorer: str
    seed: list


@contextmanager
def seeded_store(root: Path, data_dir: Path, dataset: str, num_seed: int, seed=None, **scorer):
    """Ingest and scorer servers on real sockets over a store under `root`, with `dataset`
    holding the first `num_seed` Perov-5 train crystals (or the crystals `seed`); `scorer`:
    ScorerSettings fields (e.g. a hull)."""
    from ingest_svc import IngestDeps, IngestSettings
    from ingest_svc import create_server as create_ingest
    from ingest_svc.testing import serving
    from scorer_svc import ScorerDeps, ScorerSettings
    from scorer_svc import create_server as create_scorer
    from trainer_svc.testing import perov_subset

    from loop_svc._clients import IngestClient

    objects = LocalObjectStore(root / "store", durable=False)
    versions = LocalVersionStore(objects)
    scorer_settings = ScorerSettings(
        **{**PLAIN, "batch_size": 8, "worker_startup_timeout_s": 600, **scorer}
    )
    with (
        serving(lambda: create_ingest(IngestSettings(**PLAIN), IngestDeps(versions))) as ingest,
        serving(lambda: create_scorer(scorer_settings, ScorerDeps(versions))) as scorer,
    ):
        seed = perov_subset(data_dir, num_seed) if seed is None else seed
        IngestClient(ingest.address).ingest(
            dataset, "main", "", seed, create_dataset=True, message="seed"
        )
        yield SeededStore(objects, versions, ingest.address, scorer.address, seed)


@pytest.fixture(scope="module")
def loop_stack(ray_session, data_dir, tmp_path_factory):
    """A `Stack` whose dataset DATASET holds the first NUM_SEED Perov-5 train crystals."""
    from featurestore_svc import FeatureStoreDeps, FeatureStoreSettings
    from featurestore_svc import create_server as create_featurestore
    from ingest_svc.testing import serving
    from trainer_svc.testing import serving_trainer

    root = tmp_path_factory.mktemp("loop-stack")
    with (
        seeded_store(root, data_dir, DATASET, NUM_SEED) as store,
        serving(
            lambda: create_featurestore(
                FeatureStoreSettings(**PLAIN), FeatureStoreDeps(store.objects, store.versions)
            )
        ) as fs,
        serving_trainer(store.objects, root, fs.address) as trainer,
        _sampler(ray_session) as sampler,
    ):
        hashes = tuple(sorted({c.content_hash() for c in store.seed}))
        yield Stack(store.ingest, store.scorer, sampler, trainer.address, root / "store", hashes)
