"""Contract tests every VersionStore backend must pass (embedded on local and S3, lakeFS)."""

import pytest

from storage import (
    BranchExists,
    HeadMoved,
    InvalidKey,
    MergeConflict,
    ObjectNotFound,
    RefNotFound,
    RepositoryNotFound,
    StorageError,
    sha256_bytes,
)
from storage.conftest import VersionCase


def _commit(case: VersionCase, adds=None, removes=(), branch=None, **kw):
    adds = {case.prefix + k: v for k, v in (adds or {}).items()}
    removes = [case.prefix + k for k in removes]
    return case.store.commit(case.repo, branch or case.branch, adds, removes, **kw)


def _tree(case: VersionCase, ref: str) -> dict[str, str]:
    tree = case.store.tree(case.repo, ref, prefix=case.prefix)
    return {k[len(case.prefix) :]: e.sha256 for k, e in tree.items()}


def _keys(changes, case: VersionCase) -> list[tuple[str, str]]:
    return [(c.key[len(case.prefix) :], c.kind) for c in changes]


def test_commit_then_read_by_commit_id(version_case: VersionCase):
    vs, repo = version_case.store, version_case.repo
    before = vs.head(repo, version_case.branch)
    c1 = _commit(version_case, {"a": b"A1", "b": b"B"}, message="first", metadata={"n": "1"})
    assert vs.head(repo, version_case.branch) == c1.id
    assert c1.parents == (before,) and c1.message == "first" and c1.metadata["n"] == "1"
    c2 = _commit(version_case, {"a": b"A2"}, removes=["b", "never-there"])
    assert vs.read(repo, c1.id, version_case.prefix + "a") == b"A1"
    assert vs.read(repo, c2.id, version_case.prefix + "a") == b"A2"
    assert _tree(version_case, c1.id) == {"a": sha256_bytes(b"A1"), "b": sha256_bytes(b"B")}
    assert _tree(version_case, c2.id) == {"a": sha256_bytes(b"A2")}
    assert vs.get_commit(repo, c1.id).id == c1.id
    with pytest.raises(ObjectNotFound):
        vs.read(repo, c2.id, version_case.prefix + "b")


def test_empty_change_set_creates_no_commit(version_case: VersionCase):
    c1 = _commit(version_case, {"a": b"A"})
    again = _commit(version_case, {"a": b"A"}, removes=["zz"])
    assert again.id == c1.id == version_case.store.head(version_case.repo, version_case.branch)


def test_expected_head_is_compare_and_swap(version_case: VersionCase):
    vs, repo, branch = version_case.store, version_case.repo, version_case.branch
    c1 = _commit(version_case, {"a": b"1"})
    c2 = _commit(version_case, {"b": b"2"}, expected_head=c1.id)
    with pytest.raises(HeadMoved) as info:
        _commit(version_case, {"c": b"3"}, expected_head=c1.id)
    assert info.value.actual == c2.id
    assert vs.head(repo, branch) == c2.id
    assert "c" not in _tree(version_case, branch)


def test_branches_are_independent(version_case: VersionCase):
    vs, repo, main = version_case.store, version_case.repo, version_case.branch
    base = _commit(version_case, {"a": b"A"})
    feature = f"{main}-feature"
    assert vs.create_branch(repo, feature, main) == base.id
    with pytest.raises(BranchExists):
        vs.create_branch(repo, feature, main)
    _commit(version_case, {"f": b"F"}, branch=feature)
    assert "f" not in _tree(version_case, main)
    assert set(_tree(version_case, feature)) == {"a", "f"}
    assert {main, feature} <= set(vs.list_branches(repo))
    vs.delete_branch(repo, feature)
    assert feature not in vs.list_branches(repo)
    with pytest.raises(RefNotFound):
        vs.head(repo, feature)
    with pytest.raises(StorageError):
        vs.delete_branch(repo, vs.default_branch(repo))


def test_diff_between_refs(version_case: VersionCase):
    c1 = _commit(version_case, {"keep": b"k", "change": b"1", "drop": b"d"})
    c2 = _commit(version_case, {"change": b"2", "new": b"n"}, removes=["drop"])
    changes = version_case.store.diff(version_case.repo, c1.id, c2.id, prefix=version_case.prefix)
    expected = [("change", "changed"), ("drop", "removed"), ("new", "added")]
    assert _keys(changes, version_case) == expected


def test_merge_fast_forward_three_way_and_up_to_date(version_case: VersionCase):
    vs, repo, main = version_case.store, version_case.repo, version_case.branch
    _commit(version_case, {"a": b"A"})
    feature = f"{main}-ff"
    vs.create_branch(repo, feature, main)
    tip = _commit(version_case, {"f": b"F"}, branch=feature)
    result = vs.merge(repo, feature, main)
    assert result.kind == "fast_forward" and vs.head(repo, main) == result.commit_id
    assert vs.merge(repo, feature, main).kind == "up_to_date"
    assert set(_tree(version_case, main)) == {"a", "f"} and tip.id in vs.resolve(repo, feature)
    _commit(version_case, {"g": b"G"}, branch=feature)
    _commit(version_case, {"m": b"M"}, removes=["a"])
    merged = vs.merge(repo, feature, main, message="merge feature")
    assert merged.kind == "merge"
    assert _tree(version_case, main) == {
        "f": sha256_bytes(b"F"),
        "g": sha256_bytes(b"G"),
        "m": sha256_bytes(b"M"),
    }


def test_merge_conflict_is_reported_and_writes_nothing(version_case: VersionCase):
    vs, repo, main = version_case.store, version_case.repo, version_case.branch
    _commit(version_case, {"x": b"0", "y": b"0"})
    other = f"{main}-other"
    vs.create_branch(repo, other, main)
    _commit(version_case, {"x": b"theirs", "z": b"1"}, branch=other)
    head = _commit(version_case, {"x": b"ours"}).id
    with pytest.raises(MergeConflict) as info:
        vs.merge(repo, other, main)
    assert [k[len(version_case.prefix) :] for k in info.value.conflicts] == ["x"]
    assert vs.head(repo, main) == head


def test_log_is_newest_first(version_case: VersionCase):
    vs = version_case.store
    ids = [_commit(version_case, {f"k{i}": str(i).encode()}, message=f"m{i}").id for i in range(3)]
    log = vs.log(version_case.repo, version_case.branch, limit=3)
    assert [c.id for c in log] == ids[::-1]
    assert [c.message for c in log] == ["m2", "m1", "m0"]


def test_tags_pin_a_commit(version_case: VersionCase):
    vs, repo = version_case.store, version_case.repo
    c1 = _commit(version_case, {"a": b"1"})
    tag = f"{version_case.branch}-v1"
    assert vs.create_tag(repo, tag, version_case.branch) == c1.id
    _commit(version_case, {"a": b"2"})
    assert vs.resolve(repo, tag) == c1.id and vs.list_tags(repo)[tag] == c1.id
    assert vs.read(repo, tag, version_case.prefix + "a") == b"1"
    with pytest.raises(BranchExists):
        vs.create_tag(repo, tag, c1.id)


def test_unknown_refs_and_bad_names(version_case: VersionCase):
    vs, repo = version_case.store, version_case.repo
    with pytest.raises(RefNotFound):
        vs.resolve(repo, "no-such-branch")
    with pytest.raises(RepositoryNotFound):
        vs.head("no-such-repo", "main")
    with pytest.raises(InvalidKey):
        vs.create_branch(repo, "bad name", version_case.branch)
    with pytest.raises(InvalidKey):
        _commit(version_case, {"../escape": b"x"})
