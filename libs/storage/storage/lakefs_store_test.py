"""LakeFSVersionStore against an autospecced lakefs SDK (no server can run here): every SDK call
is checked against the installed SDK's real signatures, and the transaction flow is asserted.
The behavioural contract on a live server is in version_store_test.py (needs LAKEFS_*)."""

from unittest.mock import create_autospec

import lakefs
import lakefs_sdk
import pytest
from lakefs.object import WriteableObject

from storage import MergeConflict
from storage._lakefs_store import LakeFSVersionStore

APIS = {
    "branches_api": lakefs_sdk.BranchesApi,
    "commits_api": lakefs_sdk.CommitsApi,
    "objects_api": lakefs_sdk.ObjectsApi,
    "refs_api": lakefs_sdk.RefsApi,
    "repositories_api": lakefs_sdk.RepositoriesApi,
    "tags_api": lakefs_sdk.TagsApi,
}


def _page(cls, results):
    pagination = lakefs_sdk.Pagination(
        has_more=False, next_offset="", results=len(results), max_per_page=1000
    )
    return cls(pagination=pagination, results=results)


def _commit(cid: str, parents: list[str]) -> lakefs_sdk.Commit:
    return lakefs_sdk.Commit(
        id=cid,
        parents=parents,
        committer="t",
        message=f"m-{cid}",
        creation_date=1,
        meta_range_id=f"r-{cid}",
        metadata={"k": "v"},
    )


@pytest.fixture
def fake(monkeypatch):
    client = lakefs.Client(host="http://lakefs.invalid:8000", username="key", password="secret")
    sdk = client.sdk_client
    for name, cls in APIS.items():
        setattr(sdk, name, create_autospec(cls, instance=True))
    sdk.branches_api.get_branch.return_value = lakefs_sdk.Ref(id="main", commit_id="c0")
    sdk.commits_api.get_commit.side_effect = lambda repo, ref: _commit(ref, ["c0"])
    uploads = []
    monkeypatch.setattr(
        WriteableObject, "upload", lambda self, data, **kw: uploads.append((self.path, data, kw))
    )
    return LakeFSVersionStore(client, "s3://bucket/lakefs"), sdk, uploads


def test_commit_runs_in_a_hidden_branch_and_squash_merges(fake):
    store, sdk, uploads = fake
    sdk.branches_api.diff_branch.return_value = _page(
        lakefs_sdk.DiffList, [lakefs_sdk.Diff(type="added", path="a", path_type="object")]
    )
    sdk.commits_api.commit.return_value = _commit("tx1", ["c0"])
    sdk.refs_api.merge_into_branch.return_value = lakefs_sdk.MergeResult(reference="c1")
    commit = store.commit("data", "main", {"a": b"A"}, ["gone"], "msg", {"k": "v"}, "c0")
    assert commit.id == "c1" and commit.tree == "r-c1" and commit.metadata == {"k": "v"}
    created = sdk.branches_api.create_branch.call_args.args[1]
    assert created.source == "c0" and created.hidden and created.name.startswith("tx-")
    assert uploads[0][0] == "a" and uploads[0][2]["metadata"]["sha256"].startswith("559aead0")
    assert sdk.objects_api.delete_objects.call_args.args[2].paths == ["gone"]
    merge = sdk.refs_api.merge_into_branch.call_args.kwargs["merge"]
    assert merge.squash_merge and merge.strategy == "source-wins" and merge.message == "msg"
    assert sdk.branches_api.delete_branch.call_args.args[:2] == ("data", created.name)


def test_a_commit_that_changes_nothing_returns_the_head(fake):
    store, sdk, _ = fake
    sdk.branches_api.diff_branch.return_value = _page(lakefs_sdk.DiffList, [])
    assert store.commit("data", "main", {"a": b"A"}).id == "c0"
    sdk.refs_api.merge_into_branch.assert_not_called()
    sdk.branches_api.delete_branch.assert_called_once()


def test_merge_fast_forward_and_conflict_report(fake):
    store, sdk, _ = fake
    sdk.refs_api.find_merge_base.return_value = lakefs_sdk.FindMergeBaseResult(
        source_commit_id="s1", destination_commit_id="c0", base_commit_id="c0"
    )
    sdk.refs_api.merge_into_branch.return_value = lakefs_sdk.MergeResult(reference="s1")
    assert store.merge("data", "s1", "main").kind == "fast_forward"
    sdk.refs_api.merge_into_branch.side_effect = lakefs_sdk.ApiException(status=409, reason="c")
    sdk.refs_api.diff_refs.side_effect = lambda **kw: _page(
        lakefs_sdk.DiffList,
        [
            lakefs_sdk.Diff(type="changed", path=p, path_type="object")
            for p in (["x", "y"] if kw["right_ref"] == "c0" else ["x", "z"])
        ],
    )
    with pytest.raises(MergeConflict) as info:
        store.merge("data", "s1", "main")
    assert info.value.conflicts == ["x"]


def test_listings_map_to_the_interface(fake):
    store, sdk, _ = fake
    sdk.objects_api.list_objects.return_value = _page(
        lakefs_sdk.ObjectStatsList,
        [
            lakefs_sdk.ObjectStats(
                path="p/a",
                path_type="object",
                physical_address="s3://x",
                checksum="e",
                mtime=1,
                size_bytes=3,
                metadata={"Sha256": "ab"},
            )
        ],
    )
    assert store.tree("data", "main", "p/")["p/a"].sha256 == "ab"
    assert sdk.objects_api.list_objects.call_args.kwargs["user_metadata"] is True
    sdk.branches_api.list_branches.return_value = _page(
        lakefs_sdk.RefList, [lakefs_sdk.Ref(id="main", commit_id="c0")]
    )
    assert store.list_branches("data") == {"main": "c0"}
    sdk.refs_api.log_commits.return_value = _page(lakefs_sdk.CommitList, [_commit("c0", [])])
    assert [c.id for c in store.log("data", "main", limit=5)] == ["c0"]
    sdk.refs_api.diff_refs.side_effect = None
    sdk.refs_api.diff_refs.return_value = _page(
        lakefs_sdk.DiffList, [lakefs_sdk.Diff(type="removed", path="q", path_type="object")]
    )
    assert [(c.key, c.kind) for c in store.diff("data", "a", "b")] == [("q", "removed")]
    assert sdk.refs_api.diff_refs.call_args.kwargs["type"] == "two_dot"
    assert "secret" not in store.describe()
