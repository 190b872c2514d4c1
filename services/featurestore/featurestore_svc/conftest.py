"""Fixtures of the featurestore tests: a store holding a small MP-20 dataset version."""

import itertools

import pytest
from autoperi_data import read_records
from storage import LocalObjectStore, LocalVersionStore
from xtal.convert import to_proto

NUM_CRYSTALS = 48


def store_dataset(versions, repo: str, crystals) -> str:
    """Commit canonical crystals in the ingest service's layout; return the commit id."""
    versions.create_repository(repo)
    adds = {}
    for crystal in crystals:
        message = to_proto(crystal.canonical(), include_hash=True)
        adds[f"crystals/{message.content_hash}.pb"] = message.SerializeToString()
    return versions.commit(repo, "main", adds, message="test data").id


@pytest.fixture(scope="module")
def mp20_subset(data_dir):
    """The first NUM_CRYSTALS valid crystals of MP-20 test, unique by content hash."""
    records = read_records(data_dir / "mp_20" / "assembled" / "test.csv")
    crystals = {}
    for record in itertools.islice(records, 2 * NUM_CRYSTALS):
        if record.crystal is not None and len(crystals) < NUM_CRYSTALS:
            crystals.setdefault(record.crystal.content_hash(), record.crystal)
    return list(crystals.values())


@pytest.fixture
def stores(tmp_path, mp20_subset):
    """(object store, version store, commit id) with dataset 'mp20-small' committed."""
    objects = LocalObjectStore(tmp_path / "store", durable=False)
    versions = LocalVersionStore(objects)
    commit = store_dataset(versions, "mp20-small", mp20_subset)
    return objects, versions, commit
