"""LocalVersionStore specifics: repository lifecycle, content addressing, recovery, integrity."""

import hashlib
import json

import pytest

from storage import (
    CorruptObject,
    HeadMoved,
    LocalObjectStore,
    LocalVersionStore,
    RepositoryExists,
    RepositoryNotFound,
)
from storage.conftest import verify_closure


@pytest.fixture(params=["local", "s3"])
def objects(request, tmp_path):
    if request.param == "local":
        return LocalObjectStore(tmp_path / "objects")
    return request.getfixturevalue("object_store_s3")


def test_repository_lifecycle(objects):
    vs = LocalVersionStore(objects)
    root = vs.create_repository("perov-5", default_branch="trunk")
    vs.create_repository("mp-20")
    assert vs.list_repositories() == ["mp-20", "perov-5"]
    assert vs.default_branch("perov-5") == "trunk" and vs.head("perov-5", "trunk") == root.id
    assert root.parents == () and vs.tree("perov-5", root.id) == {}
    with pytest.raises(RepositoryExists):
        vs.create_repository("perov-5")
    vs.commit("perov-5", "trunk", {"x": b"crystal"})
    vs.delete_repository("perov-5")
    assert not vs.repository_exists("perov-5") and vs.list_repositories() == ["mp-20"]
    with pytest.raises(RepositoryNotFound):
        vs.head("perov-5", "trunk")
    assert objects.has_blob(hashlib.sha256(b"crystal").hexdigest())  # blobs are shared


def test_commit_ids_are_content_hashes_of_their_records(objects):
    vs = LocalVersionStore(objects)
    vs.create_repository("data")
    commit = vs.commit(
        "data", "main", {"a/1": b"one", "a/2": b"two"}, message="m", metadata={"k": "v"}
    )
    entries = verify_closure(objects, "versions", "data", commit.id)
    assert entries == {
        "a/1": [hashlib.sha256(b"one").hexdigest(), 3],
        "a/2": [hashlib.sha256(b"two").hexdigest(), 3],
    }
    record = json.loads(objects.get_bytes(f"versions/repos/data/commits/{commit.id}"))
    assert record["parents"] == list(commit.parents) and record["message"] == "m"
    assert record["metadata"] == {"k": "v"} and record["timestamp"] == commit.timestamp


def test_a_constant_clock_makes_commit_ids_reproducible(tmp_path):
    def history(root, clock):
        vs = LocalVersionStore(LocalObjectStore(root), clock=clock)
        vs.create_repository("data")
        return vs.commit("data", "main", {"a/1": b"one"}, message="m").id

    fixed = [history(tmp_path / name, lambda: 0.0) for name in ("a", "b")]
    assert fixed[0] == fixed[1]
    times = iter([1.0, 2.0])
    assert history(tmp_path / "c", lambda: next(times)) != fixed[0]


def test_a_reopened_store_sees_the_same_history(objects):
    vs = LocalVersionStore(objects)
    vs.create_repository("data")
    commit = vs.commit("data", "main", {"k": b"v"})
    fresh = LocalVersionStore(objects)
    assert fresh.head("data", "main") == commit.id
    assert fresh.read("data", commit.id, "k") == b"v"


def test_default_branch_is_restored_after_an_interrupted_creation(objects):
    vs = LocalVersionStore(objects)
    root = vs.create_repository("data")
    objects.delete("versions/repos/data/refs/heads/main")  # as if the creator died here
    assert LocalVersionStore(objects).head("data", "main") == root.id


def test_tampered_commit_or_blob_is_detected(objects):
    vs = LocalVersionStore(objects)
    vs.create_repository("data")
    commit = vs.commit("data", "main", {"k": b"v"})
    sha = hashlib.sha256(b"v").hexdigest()
    objects.put_bytes(f"blobs/sha256/{sha[:2]}/{sha}", b"w")
    with pytest.raises(CorruptObject):
        LocalVersionStore(objects).read("data", "main", "k")
    objects.put_bytes(f"versions/repos/data/commits/{commit.id}", b"{}")
    with pytest.raises(CorruptObject):
        LocalVersionStore(objects).log("data", "main")


class _RacyStore(LocalObjectStore):
    """Runs `hook` (another writer's commit) just before the first swap of a branch head."""

    hook = None

    def compare_and_swap(self, key, data, expected_etag):
        if self.hook is not None and "/refs/heads/" in key:
            hook, self.hook = self.hook, None
            hook()
        return super().compare_and_swap(key, data, expected_etag)


def test_a_writer_that_loses_the_race_rebuilds_on_the_new_head(tmp_path):
    racy = _RacyStore(tmp_path)
    a, b = LocalVersionStore(racy), LocalVersionStore(LocalObjectStore(tmp_path))
    root = a.create_repository("data")
    racy.hook = lambda: b.commit("data", "main", {"from-b": b"2"})
    commit = a.commit("data", "main", {"from-a": b"1"})
    assert set(a.tree("data", "main")) == {"from-a", "from-b"}
    assert [len(c.parents) for c in a.log("data", "main")] == [1, 1, 0]
    assert commit.parents != (root.id,)  # rebuilt on b's commit
    racy.hook = lambda: b.commit("data", "main", {"from-b": b"3"})
    with pytest.raises(HeadMoved):
        a.commit("data", "main", {"from-a": b"4"}, expected_head=commit.id)
    assert a.read("data", "main", "from-a") == b"1"
