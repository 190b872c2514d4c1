"""IngestCore: the ingest service's logic in plain Python (no gRPC), over a VersionStore.

Layout of a dataset version: the dataset contract's (`autoperi_data`): `crystals/<content
hash>.pb` holds each canonical crystal as a serialised `crystal_pb2.Crystal` (content_hash and
source provenance set), and `sources/<sha256>.<cif|csv>` keeps the raw text each record came
from. Staged records live on a hidden branch `_staged_<branch>` until `commit_staged` replays
them onto the branch.
"""

import contextlib
import dataclasses
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from autoperi_data import CRYSTALS_PREFIX, commit_crystal_bytes, dataset_name, hash_of_key
from storage import (
    MergeConflict,
    RefNotFound,
    RepositoryExists,
    RepositoryNotFound,
    VersionStore,
)
from svc_kit import Conflict, FailedPrecondition, InvalidInput, NotFound

from ingest_svc._fair import FairScheduler
from ingest_svc._model import STAGING_PREFIX, IngestTarget, check_branch, repo_name
from ingest_svc._sandbox import ParserPool, SandboxLimits
from ingest_svc._session import IngestSession, SessionLimits


@dataclass(frozen=True)
class BranchInfo:
    """A branch: head commit, crystals at the head, whether records are staged, head time."""

    name: str
    head: str
    num_crystals: int
    has_staged: bool
    updated: float


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset with its branches (default first) and creation time."""

    name: str
    default_branch: str
    branches: tuple[BranchInfo, ...]
    created: float


@dataclass(frozen=True)
class CommitInfo:
    """One dataset version."""

    id: str
    parents: tuple[str, ...]
    message: str
    metadata: Mapping[str, str]
    timestamp: float
    num_crystals: int


@dataclass(frozen=True)
class DiffResult:
    """Content hashes added and removed from one commit to another (sorted)."""

    from_commit: str
    to_commit: str
    added: list[str]
    removed: list[str]


@dataclass(frozen=True)
class MergeOutcome:
    """Result of a merge: new head ('' if none), base, destination parent, conflicts, counts."""

    commit_id: str
    base: str
    destination_parent: str
    conflicts: list[str]
    num_added: int
    num_removed: int
    fast_forward: bool


class IngestCore:
    """Versioned crystal datasets: ingest sessions, listing, history, diff, merge and reads."""

    def __init__(
        self,
        versions: VersionStore,
        sandbox: SandboxLimits | None = None,
        limits: SessionLimits | None = None,
    ) -> None:
        self.versions = versions
        self.parsers = ParserPool(sandbox)
        self.limits = limits or SessionLimits()
        self._scheduler = FairScheduler(self.parsers.limits.workers, "ingest-parse")
        self._create_lock = threading.Lock()

    def close(self) -> None:
        """Stop the parser processes."""
        self._scheduler.shutdown()
        self.parsers.close()

    # -- ingest ---------------------------------------------------------------------------------

    def begin(self, target: IngestTarget) -> IngestSession:
        """Check the target (NotFound / InvalidInput now, before any record is parsed) and
        return a session to feed; nothing is written until `session.finish()`, and the dataset
        is created only with its first commit. Sessions share the parser workers fairly (see
        `ingest_svc._fair`): a worker that frees goes to the session with the fewest batches
        being parsed, so a small ingest waits for one batch of a big one, not for all."""
        repo, branch = repo_name(target.dataset), check_branch(target.branch)
        if target.create_branch_from:
            self._check_ref_name(target.create_branch_from)
        exists = self.versions.repository_exists(repo)
        if not exists and not target.create_dataset:
            raise NotFound(f"dataset {target.dataset!r} does not exist (set create_dataset)")
        if exists and branch not in self.versions.list_branches(repo):
            if not target.create_branch_from:
                raise NotFound(f"branch {branch!r} of {target.dataset!r} does not exist")
            self._resolve(repo, target.create_branch_from)
        write_branch = STAGING_PREFIX + branch if target.stage_only else branch
        target = _with_branch(target, branch)
        heads = _Heads(self, repo, branch, write_branch, target.create_branch_from)
        return IngestSession(
            self.versions, repo, write_branch, target, self.parsers, self._scheduler.lane(),
            self.limits, heads,
        )  # fmt: skip

    def commit_staged(
        self, dataset: str, branch: str, message: str, metadata: Mapping[str, str], expected: str
    ) -> CommitInfo:
        """Replay the staged changes onto the branch as one commit, then drop the staging."""
        repo, branch = self._repo(dataset), check_branch(branch)
        staging = STAGING_PREFIX + branch
        if staging not in self.versions.list_branches(repo):
            raise FailedPrecondition(f"nothing is staged on {dataset}/{branch}")
        heads = self.versions.list_branches(repo)
        base = self._merge_base(repo, heads[staging], heads[branch])
        changes = self.versions.diff(repo, base, staging)
        adds = {c.key: self.versions.read(repo, staging, c.key) for c in changes if c.right}
        removes = [c.key for c in changes if c.right is None]
        commit = self.versions.commit(
            repo, branch, adds, removes, message or "commit staged records", dict(metadata),
            expected_head=expected or None,
        )  # fmt: skip
        self.versions.delete_branch(repo, staging)
        return self._commit_info(repo, commit)

    # -- reads ----------------------------------------------------------------------------------

    def list_datasets(self) -> list[str]:
        """Dataset names, sorted."""
        return sorted(dataset_name(r) for r in self.versions.list_repositories())

    def get_dataset(self, dataset: str) -> DatasetInfo:
        """The dataset, its visible branches (default first) and their heads."""
        repo = self._repo(dataset)
        default = self.versions.default_branch(repo)
        heads = self.versions.list_branches(repo)
        names = sorted((b for b in heads if not b.startswith(STAGING_PREFIX)), key=lambda b: (
            b != default, b))  # fmt: skip
        branches = tuple(self._branch_info(repo, b, heads) for b in names)
        created = self.versions.log(repo, heads[default])[-1].timestamp
        return DatasetInfo(dataset, default, branches, created)

    def _branch_info(self, repo: str, branch: str, heads: Mapping[str, str]) -> BranchInfo:
        commit = self.versions.get_commit(repo, heads[branch])
        count = len(self.versions.tree(repo, commit.id, CRYSTALS_PREFIX))
        staged = STAGING_PREFIX + branch in heads
        return BranchInfo(branch, commit.id, count, staged, commit.timestamp)

    def list_commits(self, dataset: str, ref: str) -> list[CommitInfo]:
        """The log of `ref` (default branch when empty), newest first."""
        repo = self._repo(dataset)
        commits = self.versions.log(repo, self._resolve(repo, ref))
        return [self._commit_info(repo, c) for c in commits]

    def diff(self, dataset: str, from_ref: str, to_ref: str) -> DiffResult:
        """Content hashes added and removed between two refs."""
        repo = self._repo(dataset)
        left, right = self._resolve(repo, from_ref), self._resolve(repo, to_ref)
        changes = self.versions.diff(repo, left, right, CRYSTALS_PREFIX)
        added = [hash_of_key(c.key) for c in changes if c.kind == "added"]
        removed = [hash_of_key(c.key) for c in changes if c.kind == "removed"]
        return DiffResult(left, right, added, removed)

    def merge(
        self, dataset: str, source: str, destination: str, message: str,
        metadata: Mapping[str, str], dry_run: bool, expected: str,
    ) -> MergeOutcome:  # fmt: skip
        """Merge `source` into branch `destination` (conflicts listed, nothing written)."""
        repo, destination = self._repo(dataset), check_branch(destination)
        src, dst = self._resolve(repo, source), self._resolve(repo, destination)
        if expected and dst != expected:
            raise Conflict(f"destination head is {dst}, not the expected {expected}")
        base = self._merge_base(repo, src, dst)
        added = len(self.versions.diff(repo, dst, src, CRYSTALS_PREFIX))
        try:
            if dry_run:
                return MergeOutcome("", base, dst, [], added, 0, False)
            result = self.versions.merge(repo, src, destination, message, dict(metadata))
        except MergeConflict as exc:
            return MergeOutcome("", base, dst, exc.conflicts, 0, 0, False)
        changes = self.versions.diff(repo, dst, result.commit_id, CRYSTALS_PREFIX)
        num_added = sum(c.kind == "added" for c in changes)
        num_removed = sum(c.kind == "removed" for c in changes)
        commit_id = "" if result.kind == "up_to_date" else result.commit_id
        fast = result.kind == "fast_forward"
        return MergeOutcome(commit_id, base, dst, [], num_added, num_removed, fast)

    def _merge_base(self, repo: str, src: str, dst: str) -> str:
        ancestors = {c.id for c in self.versions.log(repo, src)}
        return next((c.id for c in self.versions.log(repo, dst) if c.id in ancestors), "")

    def read_crystals(
        self, dataset: str, ref: str, hashes: list[str] | None = None
    ) -> tuple[str, Iterator[tuple[str, bytes]]]:
        """The resolved commit and its (content hash, crystal bytes) in content-hash order."""
        commit = self._resolve(self._repo(dataset), ref)
        return commit, commit_crystal_bytes(self.versions, dataset, commit, hashes or None)

    # -- helpers --------------------------------------------------------------------------------

    def _repo(self, dataset: str) -> str:
        repo = repo_name(dataset)
        if not self.versions.repository_exists(repo):
            raise NotFound(f"dataset {dataset!r} does not exist")
        return repo

    def _resolve(self, repo: str, ref: str) -> str:
        ref = ref or self.versions.default_branch(repo)
        self._check_ref_name(ref)
        try:
            return self.versions.resolve(repo, ref)
        except (RefNotFound, RepositoryNotFound):
            raise NotFound(f"no branch or commit {ref!r} in {dataset_name(repo)!r}") from None

    @staticmethod
    def _check_ref_name(ref: str) -> None:
        if ref.startswith(STAGING_PREFIX) or not ref.replace("-", "").replace("_", "").isalnum():
            raise InvalidInput(f"invalid ref {ref!r}: a branch name or a commit id")

    def _commit_info(self, repo: str, commit) -> CommitInfo:
        count = len(self.versions.tree(repo, commit.id, CRYSTALS_PREFIX))
        return CommitInfo(
            commit.id, commit.parents, commit.message, dict(commit.metadata), commit.timestamp,
            count,
        )  # fmt: skip


@dataclass(frozen=True)
class _Heads:
    """The heads of one ingest's target (the session's WriteHeads): `branch` of `repo`, written
    through `write_branch` (itself, or its staging branch), started from `source` if missing."""

    core: IngestCore
    repo: str
    branch: str
    write_branch: str
    source: str

    def current(self) -> str:
        """See WriteHeads.current."""
        versions = self.core.versions
        if not versions.repository_exists(self.repo):
            return ""
        heads = versions.list_branches(self.repo)
        for name in (self.write_branch, self.branch):
            if name in heads:
                return heads[name]
        return self.core._resolve(self.repo, self.source)

    def prepare(self, writing: bool) -> None:
        """See WriteHeads.prepare."""
        versions, repo = self.core.versions, self.repo
        with self.core._create_lock:
            if not versions.repository_exists(repo):
                if not writing:
                    return
                with contextlib.suppress(RepositoryExists):
                    versions.create_repository(repo)
            if self.branch not in versions.list_branches(repo):
                versions.create_branch(repo, self.branch, self.core._resolve(repo, self.source))
            if writing and self.write_branch not in versions.list_branches(repo):
                versions.create_branch(repo, self.write_branch, versions.head(repo, self.branch))


def _with_branch(target: IngestTarget, branch: str) -> IngestTarget:
    return dataclasses.replace(target, branch=branch)
