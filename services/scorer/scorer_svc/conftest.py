"""Fixtures of the scorer tests: real CHGNet crystals, a reference dataset ingested into a
temporary version store, and a scorer server on a free port (one CHGNet worker per module)."""

import json

import grpc
import numpy as np
import pytest
from autoperi.scorer.v1 import scorer_pb2_grpc
from ingest_svc import IngestCore, IngestTarget
from ingest_svc.testing import serving
from storage import LocalObjectStore, LocalVersionStore
from xtal.convert import to_proto

from scorer_svc import ScorerDeps, ScorerSettings, create_server
from scorer_svc._bench import load_split

REFERENCE_DATASET = "scorer-ref"


@pytest.fixture(scope="session")
def real_crystals(data_dir):
    """Four Perov-5 and three MP-20 test crystals (validated by the xtal readers)."""
    return load_split("perov_5", 4) + load_split("mp_20", 3)


@pytest.fixture(scope="module")
def reference_store(tmp_path_factory, real_crystals):
    """(version store, commit id) of a dataset holding the first three Perov-5 crystals,
    committed through the ingest core."""
    root = tmp_path_factory.mktemp("scorer-store")
    versions = LocalVersionStore(LocalObjectStore(root, durable=False))
    core = IngestCore(versions)
    try:
        session = core.begin(IngestTarget(REFERENCE_DATASET, create_dataset=True))
        session.add_crystals([to_proto(c).SerializeToString() for c in real_crystals[:3]])
        result = session.finish()
    finally:
        core.close()
    assert result.num_accepted == 3
    return versions, result.commit_id


#: A hull reference of La-Rh: the elements and LaRh (eV/atom), on the hull at LaRh.
HULL_ROWS = [
    {"formula": "La", "energy_per_atom": -4.9},
    {"formula": "Rh", "energy_per_atom": -7.3},
    {"formula": "LaRh", "energy_per_atom": -6.9},
    {"formula": "LaRh3", "error": {"code": "x", "message": "skipped"}},
]


@pytest.fixture(scope="module")
def scorer_server(reference_store, tmp_path_factory):
    """A started scorer server with small limits over the reference store and `HULL_ROWS`."""
    versions, _ = reference_store
    hull = tmp_path_factory.mktemp("hull") / "hull.json"
    hull.write_text(json.dumps({"results": HULL_ROWS}))
    settings = ScorerSettings(
        host="127.0.0.1", port=0, max_batch_size=8, max_atoms=100, batch_size=3,
        relax_batch_size=2, max_relax_steps=50, log_json=False, hull_entries=str(hull),
        hull_source="test-hull",
    )  # fmt: skip
    with serving(lambda: create_server(settings, ScorerDeps(versions))) as server:
        yield server


@pytest.fixture
def stub(scorer_server):
    """A blocking ScorerService stub connected to the module's server."""
    with grpc.insecure_channel(scorer_server.address) as channel:
        yield scorer_pb2_grpc.ScorerServiceStub(channel)


@pytest.fixture(scope="module")
def chgnet_model():
    """CHGNet loaded in the test process, for direct reference calls."""
    from chgnet.model import CHGNet

    return CHGNet.load(verbose=False)


@pytest.fixture(scope="module")
def direct(chgnet_model, real_crystals):
    """Direct CHGNet predictions (task efs) of `real_crystals`, one call each."""
    preds = [chgnet_model.predict_structure(c.to_pymatgen(), task="efs") for c in real_crystals]
    return [{k: np.asarray(v, dtype=float) for k, v in p.items()} for p in preds]
