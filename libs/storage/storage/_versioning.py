"""The dataset-versioning interface (lakeFS-like): repositories, branches, commits, diff, merge.

A repository holds commits; a commit names an immutable tree (object key -> content) and its
parent commit(s); a branch is a movable name for a commit (its head); a tag is a fixed one.
Reads by commit id are stable forever. Writes go through `commit`, which applies a whole change
set (adds and removes) as one new commit or not at all, optionally only if the branch head is
still `expected_head` (optimistic concurrency: HeadMoved otherwise).
"""

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

ChangeKind = Literal["added", "removed", "changed"]
MergeKind = Literal["up_to_date", "fast_forward", "merge"]


@dataclass(frozen=True)
class TreeEntry:
    """One object in a tree: the sha256 hex of its content and its size in bytes.

    On lakeFS the sha256 is the one this library attaches as user metadata when it writes; it is
    '' for objects written by other tools.
    """

    sha256: str
    size: int


@dataclass(frozen=True)
class Commit:
    """A commit record. On the embedded store `id` is the sha256 of the canonical record
    (parents, tree, message, metadata, timestamp); on lakeFS it is lakeFS's commit id."""

    id: str
    parents: tuple[str, ...]
    tree: str  # tree id (embedded) or meta-range id (lakeFS)
    message: str
    metadata: Mapping[str, str] = field(default_factory=dict, hash=False)
    timestamp: float = 0.0  # seconds since the epoch


@dataclass(frozen=True)
class Change:
    """One key that differs between two refs (`left` -> `right`); entries are None when unknown."""

    key: str
    kind: ChangeKind
    left: TreeEntry | None = None
    right: TreeEntry | None = None


@dataclass(frozen=True)
class MergeResult:
    """The destination head after a merge and how it got there."""

    commit_id: str
    kind: MergeKind


class VersionStore(ABC):
    """Versioned datasets. Names follow `check_repo_name` / `check_ref_name`; a ref is a branch,
    a tag or a commit id. Errors are `StorageError`s (RefNotFound, HeadMoved, MergeConflict...)."""

    # -- repositories ---------------------------------------------------------------------------

    @abstractmethod
    def create_repository(self, repo: str, default_branch: str = "main") -> Commit:
        """Create a repository whose default branch points at an empty initial commit."""

    @abstractmethod
    def repository_exists(self, repo: str) -> bool:
        """True if the repository exists."""

    @abstractmethod
    def list_repositories(self) -> list[str]:
        """Repository names, sorted."""

    @abstractmethod
    def delete_repository(self, repo: str) -> None:
        """Delete the repository's refs and history (content blobs may be shared and remain)."""

    @abstractmethod
    def default_branch(self, repo: str) -> str:
        """The repository's default branch name."""

    # -- refs -----------------------------------------------------------------------------------

    @abstractmethod
    def list_branches(self, repo: str) -> dict[str, str]:
        """Branch name -> head commit id."""

    @abstractmethod
    def create_branch(self, repo: str, branch: str, source: str) -> str:
        """Create `branch` at the commit `source` resolves to; return that commit id."""

    @abstractmethod
    def delete_branch(self, repo: str, branch: str) -> None:
        """Delete a branch (not the default one); its commits stay readable by id."""

    @abstractmethod
    def head(self, repo: str, branch: str) -> str:
        """The branch's head commit id."""

    @abstractmethod
    def resolve(self, repo: str, ref: str) -> str:
        """The commit id a branch, tag or commit id names; RefNotFound otherwise."""

    @abstractmethod
    def create_tag(self, repo: str, tag: str, ref: str) -> str:
        """Create an immutable tag at `ref`; return the commit id."""

    @abstractmethod
    def list_tags(self, repo: str) -> dict[str, str]:
        """Tag name -> commit id."""

    # -- history and contents -------------------------------------------------------------------

    @abstractmethod
    def get_commit(self, repo: str, ref: str) -> Commit:
        """The commit record that `ref` (a commit id, branch or tag) resolves to."""

    @abstractmethod
    def log(self, repo: str, ref: str, limit: int | None = None) -> list[Commit]:
        """Commits reachable from `ref`, newest first (the ref's own commit first)."""

    @abstractmethod
    def tree(self, repo: str, ref: str, prefix: str = "") -> dict[str, TreeEntry]:
        """The committed keys (starting with `prefix`) at `ref` and their entries."""

    @abstractmethod
    def read(self, repo: str, ref: str, key: str) -> bytes:
        """The committed content of `key` at `ref`, verified against its sha256."""

    # -- writes ---------------------------------------------------------------------------------

    @abstractmethod
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
        """Apply `adds` (key -> content, replacing) and `removes` (absent keys are ignored) to the
        branch as one commit, all or nothing; return the new head commit.

        With `expected_head`, commit only if the head is that commit, else raise HeadMoved;
        without it, the store retries on concurrent updates so that no writer's change is lost.
        A change set that changes nothing creates no commit and returns the current head.
        """

    @abstractmethod
    def diff(self, repo: str, left: str, right: str, prefix: str = "") -> list[Change]:
        """Keys that differ from `left` to `right` (restricted to `prefix`), sorted by key."""

    @abstractmethod
    def merge(
        self,
        repo: str,
        source: str,
        destination: str,
        message: str = "",
        metadata: Mapping[str, str] | None = None,
    ) -> MergeResult:
        """Merge ref `source` into branch `destination`.

        Up to date if `source` is already contained; fast-forward if the destination head is an
        ancestor of `source`; otherwise a three-way merge on keys against the best common
        ancestor, writing a merge commit with parents (destination head, source). A key changed
        on both sides to different content (or changed on one and removed on the other) is a
        conflict: MergeConflict lists them and nothing is written.
        """
