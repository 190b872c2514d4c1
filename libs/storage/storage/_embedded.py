"""LocalVersionStore: dataset versioning embedded in the process, on top of any ObjectStore.

Layout (under `root`, default 'versions'):
  repositories/<repo>.json          config, written once (the repository exists iff it exists)
  repos/<repo>/commits/<id>         commit records, id = sha256 of the canonical record
  repos/<repo>/trees/<id>           trees (key -> [sha256, size]), id = sha256 of the bytes
  repos/<repo>/refs/heads/<branch>  the branch head: a commit id, the only mutable objects
  repos/<repo>/refs/tags/<tag>      tags, created once
  blobs/sha256/..                   content, shared by every repository of the object store

Atomicity: a commit writes its blobs, then its tree, then its commit record (all immutable and
content-addressed, each write atomic), and only then moves the branch head with the store's
`compare_and_swap`. A writer killed at any point leaves the head at the old commit or at the new,
complete one; anything else it wrote is unreferenced garbage. Concurrency: a head moves only by
compare-and-swap from the value the writer built on, so concurrent commits never overwrite each
other; the loser rebuilds on the new head and retries. These hold as strongly as the backing
store's `compare_and_swap` (see LocalObjectStore and S3ObjectStore).
"""

import contextlib
import json
import random
import time
from collections.abc import Callable, Iterable, Mapping

from storage._cache import BoundedCache
from storage._errors import (
    BranchExists,
    CorruptObject,
    HeadMoved,
    InvalidKey,
    MergeConflict,
    ObjectNotFound,
    PreconditionFailed,
    RefNotFound,
    RepositoryExists,
    RepositoryNotFound,
    StorageError,
)
from storage._history import is_ancestor, merge_base, walk_log
from storage._keys import (
    check_key,
    check_prefix,
    check_ref_name,
    check_repo_name,
    is_sha256,
    join_key,
)
from storage._object_store import ObjectStore
from storage._tree import (
    apply_changes,
    decode_commit,
    decode_tree,
    diff_trees,
    encode_commit,
    encode_tree,
    three_way_merge,
)
from storage._versioning import Change, Commit, MergeResult, TreeEntry, VersionStore


class LocalVersionStore(VersionStore):
    """Versioned datasets stored as immutable objects plus compare-and-swap branch heads."""

    def __init__(
        self,
        objects: ObjectStore,
        root: str = "versions",
        *,
        max_retries: int = 200,
        clock: Callable[[], float] = time.time,
    ):
        """`clock` stamps new commits (seconds since the epoch). A commit id is the sha256 of
        (parents, tree, message, metadata, timestamp) and trees are content-addressed, so with a
        constant clock the same writes give the same commit ids in any store: reproducible
        dataset versions (used for the benchmark splits that checkpoints are trained on)."""
        self.objects = objects
        self.root = root.strip("/")
        self.max_retries = max_retries
        self.clock = clock
        self._commits: BoundedCache[Commit] = BoundedCache(4096)
        self._trees: BoundedCache[dict[str, TreeEntry]] = BoundedCache(16)

    def describe(self) -> str:
        """Where the versions live, without credentials."""
        return f"{self.objects.describe()} ({self.root}/)"

    # -- repositories ---------------------------------------------------------------------------

    def create_repository(self, repo: str, default_branch: str = "main") -> Commit:
        check_repo_name(repo)
        check_ref_name(default_branch)
        root = self._write_commit(repo, (), {}, "repository created", {})
        config = {"format": 1, "default_branch": default_branch, "root_commit": root.id}
        try:
            self.objects.compare_and_swap(self._config_key(repo), json.dumps(config).encode(), None)
        except PreconditionFailed:
            raise RepositoryExists(f"repository {repo!r} already exists") from None
        self._heal_default_branch(repo, config)
        return root

    def repository_exists(self, repo: str) -> bool:
        return self._config(repo, required=False) is not None

    def list_repositories(self) -> list[str]:
        prefix = join_key(self.root, "repositories") + "/"
        names = (k[len(prefix) :] for k in self.objects.list_keys(prefix))
        return sorted(n[: -len(".json")] for n in names if n.endswith(".json"))

    def delete_repository(self, repo: str) -> None:
        """Delete refs, then history, then the config. Not atomic and not for use while others
        write to the repository: if interrupted, the repository still exists; run it again."""
        self._config(repo)
        refs = self._repo_key(repo, "refs") + "/"
        for prefix in (refs, self._repo_key(repo) + "/"):
            for key in self.objects.list_keys(prefix):
                self.objects.delete(key)
        self.objects.delete(self._config_key(repo))
        self._commits.clear()
        self._trees.clear()

    def default_branch(self, repo: str) -> str:
        return self._config(repo)["default_branch"]

    # -- refs -----------------------------------------------------------------------------------

    def list_branches(self, repo: str) -> dict[str, str]:
        self._config(repo)
        prefix = self._repo_key(repo, "refs", "heads") + "/"
        names = [k[len(prefix) :] for k in self.objects.list_keys(prefix)]
        return {name: self.head(repo, name) for name in names}

    def create_branch(self, repo: str, branch: str, source: str) -> str:
        check_ref_name(branch)
        commit_id = self.resolve(repo, source)
        try:
            self.objects.compare_and_swap(
                self._ref_key(repo, "heads", branch), commit_id.encode(), None
            )
        except PreconditionFailed:
            raise BranchExists(f"branch {branch!r} already exists in {repo!r}") from None
        return commit_id

    def delete_branch(self, repo: str, branch: str) -> None:
        if branch == self.default_branch(repo):
            raise StorageError(f"refusing to delete the default branch {branch!r} of {repo!r}")
        self.head(repo, branch)
        self.objects.delete(self._ref_key(repo, "heads", branch))

    def head(self, repo: str, branch: str) -> str:
        return self._read_ref(repo, "heads", branch)[0]

    def resolve(self, repo: str, ref: str) -> str:
        """A 64-hex `ref` naming a stored commit is that commit; else a branch, then a tag."""
        check_repo_name(repo)
        if is_sha256(ref) and self.objects.exists(self._repo_key(repo, "commits", ref)):
            return ref
        for kind in ("heads", "tags"):
            try:
                return self._read_ref(repo, kind, ref)[0]
            except (RefNotFound, InvalidKey):
                pass
        self._config(repo)
        raise RefNotFound(f"no branch, tag or commit {ref!r} in {repo!r}")

    def create_tag(self, repo: str, tag: str, ref: str) -> str:
        check_ref_name(tag, "tag")
        commit_id = self.resolve(repo, ref)
        try:
            self.objects.compare_and_swap(
                self._ref_key(repo, "tags", tag), commit_id.encode(), None
            )
        except PreconditionFailed:
            raise BranchExists(f"tag {tag!r} already exists in {repo!r}") from None
        return commit_id

    def list_tags(self, repo: str) -> dict[str, str]:
        self._config(repo)
        prefix = self._repo_key(repo, "refs", "tags") + "/"
        return {
            k[len(prefix) :]: self.objects.get_bytes(k).decode()
            for k in self.objects.list_keys(prefix)
        }

    # -- history and contents -------------------------------------------------------------------

    def get_commit(self, repo: str, ref: str) -> Commit:
        return self._load_commit(repo, self.resolve(repo, ref))

    def log(self, repo: str, ref: str, limit: int | None = None) -> list[Commit]:
        return walk_log(lambda c: self._load_commit(repo, c), self.resolve(repo, ref), limit)

    def tree(self, repo: str, ref: str, prefix: str = "") -> dict[str, TreeEntry]:
        check_prefix(prefix)
        tree = self._tree_of(repo, self.resolve(repo, ref))
        return {k: e for k, e in tree.items() if k.startswith(prefix)}

    def read(self, repo: str, ref: str, key: str) -> bytes:
        entry = self._tree_of(repo, self.resolve(repo, ref)).get(check_key(key))
        if entry is None:
            raise ObjectNotFound(f"{key!r} is not in {repo}@{ref}")
        return self.objects.get_blob(entry.sha256)

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
        # blobs first, durably: no commit may name content that is not stored yet
        digests = self.objects.put_blobs(list(adds.values()))
        entries = {k: TreeEntry(d, len(v)) for (k, v), d in zip(adds.items(), digests, strict=True)}
        for attempt in range(self.max_retries + 1):
            head, etag = self._read_ref(repo, "heads", branch)
            if expected_head is not None and head != expected_head:
                raise HeadMoved(branch, expected_head, head)
            parent_tree = self._tree_of(repo, head)
            new_tree = apply_changes(parent_tree, entries, removes)
            if new_tree == parent_tree:
                return self._load_commit(repo, head)
            commit = self._write_commit(repo, (head,), new_tree, message, metadata or {})
            if self._swap_head(repo, branch, commit.id, etag):
                return commit
            if expected_head is not None:
                raise HeadMoved(branch, expected_head, self.head(repo, branch))
            _backoff(attempt)
        raise StorageError(f"gave up committing to {repo}/{branch}: {self.max_retries} conflicts")

    def diff(self, repo: str, left: str, right: str, prefix: str = "") -> list[Change]:
        check_prefix(prefix)
        left_tree = self._tree_of(repo, self.resolve(repo, left))
        return diff_trees(left_tree, self._tree_of(repo, self.resolve(repo, right)), prefix)

    def merge(
        self,
        repo: str,
        source: str,
        destination: str,
        message: str = "",
        metadata: Mapping[str, str] | None = None,
    ) -> MergeResult:
        for attempt in range(self.max_retries + 1):
            src = self.resolve(repo, source)
            dst, etag = self._read_ref(repo, "heads", destination)
            result = self._merge_once(repo, source, destination, src, dst, message, metadata)
            if result.kind == "up_to_date" or self._swap_head(
                repo, destination, result.commit_id, etag
            ):
                return result
            _backoff(attempt)
        raise StorageError(
            f"gave up merging into {repo}/{destination}: {self.max_retries} conflicts"
        )

    # -- internals ------------------------------------------------------------------------------

    def _load_commit(self, repo: str, commit_id: str) -> Commit:
        cached = self._commits.get((repo, commit_id))
        if cached is not None:
            return cached
        try:
            data = self.objects.get_bytes(self._repo_key(repo, "commits", commit_id))
        except ObjectNotFound:
            raise CorruptObject(f"commit {commit_id} is missing from {repo!r}") from None
        commit = decode_commit(commit_id, data)
        self._commits.put((repo, commit_id), commit)
        return commit

    def _merge_once(self, repo, source, destination, src, dst, message, metadata) -> MergeResult:
        def parents_of(cid: str) -> tuple[str, ...]:
            return self._load_commit(repo, cid).parents

        if is_ancestor(parents_of, src, dst):
            return MergeResult(dst, "up_to_date")
        if is_ancestor(parents_of, dst, src):
            return MergeResult(src, "fast_forward")
        base = merge_base(lambda c: self._load_commit(repo, c), src, dst)
        if base is None:
            raise StorageError(f"{source!r} and {destination!r} share no history in {repo!r}")
        trees = [self._tree_of(repo, c) for c in (base, dst, src)]
        merged, conflicts = three_way_merge(*trees)
        if conflicts:
            raise MergeConflict(source, destination, conflicts)
        text = message or f"merge {source} into {destination}"
        commit = self._write_commit(repo, (dst, src), merged, text, metadata or {})
        return MergeResult(commit.id, "merge")

    def _write_commit(self, repo, parents, tree, message, metadata) -> Commit:
        tree_id, tree_bytes = encode_tree(tree)
        self.objects.put_bytes(self._repo_key(repo, "trees", tree_id), tree_bytes)
        self._trees.put((repo, tree_id), dict(tree))
        commit, data = encode_commit(parents, tree_id, message, metadata, self.clock())
        self.objects.put_bytes(self._repo_key(repo, "commits", commit.id), data)
        return commit

    def _tree_of(self, repo: str, commit_id: str) -> dict[str, TreeEntry]:
        tree_id = self._load_commit(repo, commit_id).tree
        cached = self._trees.get((repo, tree_id))
        if cached is not None:
            return cached
        try:
            data = self.objects.get_bytes(self._repo_key(repo, "trees", tree_id))
        except ObjectNotFound:
            raise CorruptObject(f"commit {commit_id} names missing tree {tree_id}") from None
        tree = decode_tree(tree_id, data)
        self._trees.put((repo, tree_id), tree)
        return tree

    def _swap_head(self, repo: str, branch: str, commit_id: str, etag: str) -> bool:
        try:
            self.objects.compare_and_swap(
                self._ref_key(repo, "heads", branch), commit_id.encode(), etag
            )
        except PreconditionFailed:
            return False
        return True

    def _read_ref(self, repo: str, kind: str, name: str) -> tuple[str, str]:
        check_repo_name(repo)
        check_ref_name(name, "branch" if kind == "heads" else "tag")
        key = self._ref_key(repo, kind, name)
        try:
            data, etag = self.objects.get_versioned(key)
            return data.decode(), etag
        except ObjectNotFound:
            config = self._config(repo)
            if kind != "heads" or name != config["default_branch"]:
                raise RefNotFound(f"no {kind[:-1]} {name!r} in {repo!r}") from None
        self._heal_default_branch(repo, config)
        data, etag = self.objects.get_versioned(key)
        return data.decode(), etag

    def _heal_default_branch(self, repo: str, config: dict) -> None:
        """Point the default branch at the root commit if a creator died before doing so."""
        key = self._ref_key(repo, "heads", config["default_branch"])
        with contextlib.suppress(PreconditionFailed):
            self.objects.compare_and_swap(key, config["root_commit"].encode(), None)

    def _config(self, repo: str, required: bool = True) -> dict | None:
        check_repo_name(repo)
        try:
            return json.loads(self.objects.get_bytes(self._config_key(repo)))
        except ObjectNotFound:
            if required:
                raise RepositoryNotFound(f"no repository {repo!r} in {self.describe()}") from None
            return None

    def _config_key(self, repo: str) -> str:
        return join_key(self.root, "repositories", f"{repo}.json")

    def _repo_key(self, repo: str, *parts: str) -> str:
        return join_key(self.root, "repos", repo, *parts)

    def _ref_key(self, repo: str, kind: str, name: str) -> str:
        return self._repo_key(repo, "refs", kind, name)


def _backoff(attempt: int) -> None:
    """Sleep a random time growing with the attempt number (decorrelates racing writers)."""
    time.sleep(random.uniform(0.0, min(0.25, 0.002 * 2 ** min(attempt, 10))))
