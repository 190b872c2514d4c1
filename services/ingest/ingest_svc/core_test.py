"""IngestCore without gRPC: in-stream dedup, record keys, branch checks."""

import pytest
from storage import LocalObjectStore, LocalVersionStore
from svc_kit import DeadlineExceeded, InvalidInput, NotFound

from ingest_svc import IngestCore, IngestTarget, SandboxLimits
from ingest_svc._model import RequestAbandoned
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


def _session(core, target, *cifs):
    session = core.begin(target)
    for index, text in enumerate(cifs):
        session.add_cif(f"{index}.cif", text)
    return session


def test_a_refused_or_cancelled_write_leaves_nothing(core):
    def too_late():
        raise DeadlineExceeded("too late")

    target = IngestTarget("core-refused", create_dataset=True)
    with pytest.raises(DeadlineExceeded):
        _session(core, target, GOOD_CIF).finish(too_late)
    session = _session(core, target, GOOD_CIF)
    session.wait_for_capacity(0)  # parsed: only the write is left
    session.cancel()
    with pytest.raises(RequestAbandoned):
        session.finish()
    assert not core.versions.repository_exists("core-refused")


def test_nothing_accepted_creates_no_dataset_only_a_missing_branch(core):
    """A dataset is created with its first commit; a missing branch of an existing dataset is
    created even when nothing is committed (it names an existing commit)."""
    result = _session(core, IngestTarget("core-empty", create_dataset=True), BAD_CIF).finish()
    assert (result.commit_id, result.num_rejected) == ("", 1)
    assert not core.versions.repository_exists("core-empty")
    first = _session(core, IngestTarget("core-empty", create_dataset=True), GOOD_CIF).finish()
    side = IngestTarget("core-empty", branch="side", create_branch_from="main")
    result = _session(core, side, BAD_CIF, GOOD_CIF).finish()
    assert (result.commit_id, result.num_duplicates, result.parent_commit_id) == (
        "", 1, first.commit_id
    )  # fmt: skip
    assert core.versions.list_branches("core-empty")["side"] == first.commit_id
