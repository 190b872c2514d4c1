"""LakeFSVersionStore: the versioning interface on a lakeFS server, through the `lakefs` SDK.

Mapping: a repository is a lakeFS repository (created under `storage_namespace`/<repo>), branches,
tags and commits are lakeFS's own, a tree is the set of objects at a ref, and each object written
here carries its sha256 as lakeFS user metadata ('sha256').

`commit` follows lakeFS's transaction pattern: it creates a hidden branch at the head (or at
`expected_head`), uploads the adds and deletes the removes there, commits, and squash-merges that
commit into the branch with the 'source-wins' strategy, then deletes the hidden branch. So the
branch sees the whole change set or none of it, and concurrent commits are merged rather than
lost. lakeFS offers no compare-and-swap on a branch head, so `expected_head` is checked just
before the merge: a commit landing between that check and the merge is merged, not rejected
(weaker than the embedded store). Commit ids are lakeFS's; `Commit.tree` is the meta-range id.
"""

import os
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress

import lakefs
import lakefs_sdk
from lakefs.exceptions import ConflictException, LakeFSException, NotFoundException
from lakefs.reference import generate_listing

from storage._errors import (
    BranchExists,
    CorruptObject,
    HeadMoved,
    MergeConflict,
    ObjectNotFound,
    RefNotFound,
    RepositoryExists,
    RepositoryNotFound,
    StorageError,
)
from storage._keys import check_key, check_prefix, check_ref_name, check_repo_name, sha256_bytes
from storage._versioning import Change, Commit, MergeResult, TreeEntry, VersionStore

ENDPOINT_ENV = "LAKEFS_ENDPOINT"
ACCESS_KEY_ENV = "LAKEFS_ACCESS_KEY_ID"
SECRET_KEY_ENV = "LAKEFS_SECRET_ACCESS_KEY"
NAMESPACE_ENV = "LAKEFS_STORAGE_NAMESPACE"
_SHA_META = "sha256"


class LakeFSVersionStore(VersionStore):
    """Versioned datasets on lakeFS; see the module notes for the mapping and guarantees."""

    def __init__(self, client: lakefs.Client, storage_namespace: str | None = None) -> None:
        self.client = client
        self.storage_namespace = storage_namespace.rstrip("/") if storage_namespace else None
        self._sdk = client.sdk_client

    @classmethod
    def connect(
        cls,
        endpoint: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        storage_namespace: str | None = None,
    ) -> "LakeFSVersionStore":
        """Connect with arguments or LAKEFS_ENDPOINT, LAKEFS_ACCESS_KEY_ID,
        LAKEFS_SECRET_ACCESS_KEY and LAKEFS_STORAGE_NAMESPACE (for creating repositories)."""
        host = endpoint or os.environ.get(ENDPOINT_ENV)
        if not host:
            raise StorageError(f"no lakeFS endpoint: pass one or set {ENDPOINT_ENV}")
        client = lakefs.Client(
            host=host,
            username=access_key_id or os.environ.get(ACCESS_KEY_ENV),
            password=secret_access_key or os.environ.get(SECRET_KEY_ENV),
        )
        return cls(client, storage_namespace or os.environ.get(NAMESPACE_ENV))

    def describe(self) -> str:
        """The lakeFS endpoint, without credentials."""
        return f"lakeFS at {self.client.config.host}"

    # -- repositories ---------------------------------------------------------------------------

    def create_repository(self, repo: str, default_branch: str = "main") -> Commit:
        check_repo_name(repo)
        check_ref_name(default_branch)
        if not self.storage_namespace:
            raise StorageError(f"creating a lakeFS repository needs {NAMESPACE_ENV}")
        try:
            lakefs.Repository(repo, self.client).create(
                storage_namespace=f"{self.storage_namespace}/{repo}", default_branch=default_branch
            )
        except ConflictException:
            raise RepositoryExists(f"repository {repo!r} already exists") from None
        except LakeFSException as exc:
            raise StorageError(f"{self.describe()}: creating {repo!r}: {exc}") from None
        return self.get_commit(repo, default_branch)

    def repository_exists(self, repo: str) -> bool:
        try:
            self._sdk.repositories_api.get_repository(check_repo_name(repo))
        except lakefs_sdk.ApiException as exc:
            if exc.status == 404:
                return False
            raise StorageError(f"{self.describe()}: {exc.reason}") from None
        return True

    def list_repositories(self) -> list[str]:
        with self._errors("repositories"):
            return sorted(r.id for r in lakefs.repositories(self.client))

    def delete_repository(self, repo: str) -> None:
        with self._errors(repo, repo):
            lakefs.Repository(check_repo_name(repo), self.client).delete()

    def default_branch(self, repo: str) -> str:
        with self._errors(repo, repo):
            return self._sdk.repositories_api.get_repository(check_repo_name(repo)).default_branch

    # -- refs -----------------------------------------------------------------------------------

    def list_branches(self, repo: str) -> dict[str, str]:
        with self._errors(repo, repo):
            refs = generate_listing(self._sdk.branches_api.list_branches, check_repo_name(repo))
            return {r.id: r.commit_id for r in refs}

    def create_branch(self, repo: str, branch: str, source: str) -> str:
        check_ref_name(branch)
        commit_id = self.resolve(repo, source)
        try:
            lakefs.Branch(repo, branch, self.client).create(commit_id)
        except ConflictException:
            raise BranchExists(f"branch {branch!r} already exists in {repo!r}") from None
        except LakeFSException as exc:
            raise StorageError(f"{self.describe()}: creating branch {branch!r}: {exc}") from None
        return commit_id

    def delete_branch(self, repo: str, branch: str) -> None:
        if branch == self.default_branch(repo):
            raise StorageError(f"refusing to delete the default branch {branch!r} of {repo!r}")
        with self._errors(f"branch {branch!r}", repo):
            lakefs.Branch(repo, check_ref_name(branch), self.client).delete()

    def head(self, repo: str, branch: str) -> str:
        with self._errors(f"branch {branch!r}", repo):
            return self._sdk.branches_api.get_branch(repo, check_ref_name(branch)).commit_id

    def resolve(self, repo: str, ref: str) -> str:
        return self.get_commit(repo, ref).id

    def create_tag(self, repo: str, tag: str, ref: str) -> str:
        check_ref_name(tag, "tag")
        commit_id = self.resolve(repo, ref)
        try:
            lakefs.Tag(repo, tag, self.client).create(commit_id)
        except ConflictException:
            raise BranchExists(f"tag {tag!r} already exists in {repo!r}") from None
        except LakeFSException as exc:
            raise StorageError(f"{self.describe()}: creating tag {tag!r}: {exc}") from None
        return commit_id

    def list_tags(self, repo: str) -> dict[str, str]:
        with self._errors(repo, repo):
            refs = generate_listing(self._sdk.tags_api.list_tags, check_repo_name(repo))
            return {r.id: r.commit_id for r in refs}

    # -- history and contents -------------------------------------------------------------------

    def get_commit(self, repo: str, ref: str) -> Commit:
        with self._errors(f"ref {ref!r}", repo):
            return _to_commit(self._sdk.commits_api.get_commit(check_repo_name(repo), ref))

    def log(self, repo: str, ref: str, limit: int | None = None) -> list[Commit]:
        with self._errors(f"ref {ref!r}", repo):
            commits = lakefs.Repository(repo, self.client).ref(ref).log(max_amount=limit)
            return [_to_commit(c) for c in commits]

    def tree(self, repo: str, ref: str, prefix: str = "") -> dict[str, TreeEntry]:
        check_prefix(prefix)
        with self._errors(f"ref {ref!r}", repo):
            listing = generate_listing(
                self._sdk.objects_api.list_objects,
                repository=repo,
                ref=ref,
                prefix=prefix or None,
                user_metadata=True,
            )
            return {o.path: TreeEntry(_sha_of(o.metadata), o.size_bytes or 0) for o in listing}

    def read(self, repo: str, ref: str, key: str) -> bytes:
        obj = lakefs.Repository(repo, self.client).ref(ref).object(check_key(key))
        with self._errors(f"{key!r} at {ref!r}", repo, missing=ObjectNotFound):
            expected = _sha_of(obj.stat(user_metadata=True).metadata)
            with obj.reader(mode="rb", pre_sign=False) as fh:
                data = fh.read()
        if expected and sha256_bytes(data) != expected:
            raise CorruptObject(f"{key!r} at {ref!r} in {repo!r} does not match its sha256")
        return data

    # -- writes ---------------------------------------------------------------------------------

    def commit(
        self,
        repo: str,
        branch: str,
        adds: Mapping[str, bytes] | None = None,
        removes: Iterable[str] = (),
        message: str = "",
        metadata: Mapping[str, str] | None = None,
        expected_head: str | None = None,
    ) -> Commit:
        adds = {check_key(k): bytes(v) for k, v in (adds or {}).items()}
        removes = [check_key(k) for k in removes]
        head = self.head(repo, branch)
        if expected_head is not None and head != expected_head:
            raise HeadMoved(branch, expected_head, head)
        with self._transaction(repo, head) as tx:
            self._stage(tx, adds, removes)
            if next(iter(tx.uncommitted(max_amount=1)), None) is None:
                return self.get_commit(repo, head)
            tx.commit(message=message or "commit", metadata=dict(metadata or {}))
            if expected_head is not None and (now := self.head(repo, branch)) != expected_head:
                raise HeadMoved(branch, expected_head, now)
            ref = self._merge_into(repo, tx.id, branch, message, metadata, "source-wins", True)
        return self.get_commit(repo, ref)

    def diff(self, repo: str, left: str, right: str, prefix: str = "") -> list[Change]:
        check_prefix(prefix)
        with self._errors(f"refs {left!r}..{right!r}", repo):
            listing = generate_listing(
                self._sdk.refs_api.diff_refs,
                repository=repo,
                left_ref=left,
                right_ref=right,
                prefix=prefix or None,
                type="two_dot",
            )
            kinds = {"added": "added", "removed": "removed", "changed": "changed"}
            changes = [Change(d.path, kinds[d.type]) for d in listing if d.type in kinds]
        return sorted(changes, key=lambda c: c.key)

    def merge(
        self,
        repo: str,
        source: str,
        destination: str,
        message: str = "",
        metadata: Mapping[str, str] | None = None,
    ) -> MergeResult:
        src = self.resolve(repo, source)
        with self._errors(f"merge {source!r} into {destination!r}", repo):
            bases = self._sdk.refs_api.find_merge_base(repo, src, destination)
        if bases.base_commit_id == src:
            return MergeResult(bases.destination_commit_id, "up_to_date")
        try:
            ref = self._merge_into(repo, src, destination, message, metadata, None, False)
        except ConflictException:
            raise MergeConflict(source, destination, self._conflicts(repo, bases)) from None
        fast = bases.base_commit_id == bases.destination_commit_id and ref == src
        return MergeResult(ref, "fast_forward" if fast else "merge")

    # -- internals ------------------------------------------------------------------------------

    @contextmanager
    def _transaction(self, repo: str, head: str) -> Iterator[lakefs.Branch]:
        name = f"tx-{uuid.uuid4().hex}"
        with self._errors(f"transaction branch {name}", repo):
            tx = lakefs.Branch(repo, name, self.client).create(head, hidden=True)
        try:
            yield tx
        finally:
            with suppress(LakeFSException):  # a leftover hidden branch only wastes a name
                tx.delete()

    def _stage(self, tx: lakefs.Branch, adds: dict[str, bytes], removes: list[str]) -> None:
        with self._errors("staging", tx.repo_id):
            for key, data in adds.items():
                tx.object(key).upload(
                    data, mode="wb", pre_sign=False, metadata={_SHA_META: sha256_bytes(data)}
                )
            present = [k for k in removes if k not in adds and tx.object(k).exists()]
            if present:
                tx.delete_objects(present)

    def _merge_into(self, repo, source, branch, message, metadata, strategy, squash) -> str:
        merge = lakefs_sdk.Merge(
            message=message or f"merge {source} into {branch}",
            metadata=dict(metadata or {}),
            strategy=strategy,
            squash_merge=squash,
        )
        try:
            return self._sdk.refs_api.merge_into_branch(repo, source, branch, merge=merge).reference
        except lakefs_sdk.ApiException as exc:
            if exc.status == 409:
                raise ConflictException(exc.status, exc.reason, exc.body) from None
            if exc.status == 404:
                raise RefNotFound(
                    f"{self.describe()}: {repo}: no {source!r} or {branch!r}"
                ) from None
            raise StorageError(f"{self.describe()}: merge into {branch!r}: {exc.reason}") from None

    def _conflicts(self, repo: str, bases) -> list[str]:
        """Keys changed on both sides since the merge base (lakeFS reports no conflict list)."""
        base = bases.base_commit_id
        ours = {c.key for c in self.diff(repo, base, bases.destination_commit_id)}
        theirs = {c.key for c in self.diff(repo, base, bases.source_commit_id)}
        return sorted(ours & theirs)

    @contextmanager
    def _errors(self, what: str, repo: str | None = None, missing=RefNotFound) -> Iterator[None]:
        try:
            yield
        except (lakefs_sdk.ApiException, LakeFSException) as exc:
            status = getattr(exc, "status", None) or getattr(exc, "status_code", None)
            if isinstance(exc, NotFoundException) or status == 404:
                if repo is not None and not self.repository_exists(repo):
                    raise RepositoryNotFound(
                        f"no repository {repo!r} in {self.describe()}"
                    ) from None
                raise missing(f"{what} not found in {repo!r} ({self.describe()})") from None
            raise StorageError(f"{self.describe()}: {what}: {exc}") from None


def _to_commit(c) -> Commit:
    """A lakeFS commit (SDK model or high-level namedtuple) as our Commit."""
    return Commit(
        id=c.id,
        parents=tuple(c.parents),
        tree=c.meta_range_id,
        message=c.message,
        metadata=dict(c.metadata or {}),
        timestamp=float(c.creation_date),
    )


def _sha_of(metadata: Mapping[str, str] | None) -> str:
    """The sha256 user metadata, whatever case the server gives its key."""
    for key, value in (metadata or {}).items():
        if key.lower() == _SHA_META:
            return value
    return ""
