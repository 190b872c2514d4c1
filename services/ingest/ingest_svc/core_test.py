"""IngestCore without gRPC: in-stream dedup, record keys, branch checks."""

import pytest
from storage import LocalObjectStore, LocalVersionStore
from svc_kit import InvalidInput, NotFound

from ingest_svc import IngestCore, IngestTarget, SandboxLimits
from ingest_svc.server_test import BAD_CIF, GOOD_CIF


@pytest.fixture(scope="module")
def core(tmp_path_factory):
    store = LocalObjectStore(tmp_path_factory.mktemp("core-store"), durable=False)
    core = IngestCore(LocalVersionStore(store), SandboxLimits(workers=1))
    yield core
    core.close()


def test_duplicates_within_a_stream_are_counted_once(core):
    session = core.begin(IngestTarget("core-dedup", create_dataset=True))
    session.add_cif("a.cif", GOOD_CIF)
    shifted = GOOD_CIF.replace("data_NaCl", "data_moved").replace("Na Na1 0 0 0", "Na Na1 0.1 0 0")
    session.add_cif("b.cif", shifted.replace("Cl Cl1 0.5 0.5 0.5", "Cl Cl1 0.6 0.5 0.5"))
    session.add_cif("c.cif", BAD_CIF)
    result = session.finish()
    assert (result.num_received, result.num_accepted, result.num_duplicates) == (3, 1, 1)
    assert [r.record_key for r in result.rejections] == ["c.cif#bad"]
    assert core.get_dataset("core-dedup").branches[0].num_crystals == 1


def test_targets_are_checked_before_parsing(core):
    with pytest.raises(NotFound):
        core.begin(IngestTarget("core-none"))
    with pytest.raises(InvalidInput):
        core.begin(IngestTarget("core-dedup", branch="a/b"))
    with pytest.raises(NotFound):
        core.begin(IngestTarget("core-dedup", branch="other"))
