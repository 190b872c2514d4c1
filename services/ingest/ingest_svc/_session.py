"""One ingest: chunks go to the sandboxed parsers as they arrive; `finish` dedups and commits.

Parse batches are submitted to the session's own executor (a lane of the core's FairScheduler,
so that concurrent sessions share the parser workers fairly).

Nothing is written before `finish`, and `finish` writes one commit (or nothing): a request that
fails, is aborted or is cancelled leaves no trace in the stores. An ingest that has nothing to
commit (every record rejected or already there) creates no dataset either; it only creates a
missing branch of an existing dataset (a new name for an existing commit).
"""

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, wait
from dataclasses import dataclass
from typing import Protocol

from autoperi_data import CRYSTALS_PREFIX, crystal_key, source_key
from storage import Commit, HeadMoved, VersionStore, sha256_bytes
from svc_kit import Conflict, TooLarge

from ingest_svc._batches import Batch, cif_batches, csv_batches, proto_batches
from ingest_svc._model import (
    REQUEST_ID_KEY,
    IngestResult,
    IngestTarget,
    RejectPolicy,
    RequestAbandoned,
)
from ingest_svc._records import Parsed, listed, sort_entries
from ingest_svc._sandbox import ParserPool

_COMMIT_ATTEMPTS = 20
REQUEST_LOOKBACK = 100  # commits of the branch searched for a retried request's commit
log = logging.getLogger("ingest_svc.session")


@dataclass(frozen=True)
class SessionLimits:
    """Per-request limits: records, text bytes, parser batch size, and the rejections a reply
    lists (count, and bytes of their text: the reply must fit a gRPC message)."""

    max_records: int = 100_000
    max_bytes: int = 256 << 20
    batch_records: int = 200
    max_rejections_listed: int = 1000
    max_bytes_listed: int = 1 << 20


class WriteHeads(Protocol):
    """Where one ingest writes: its dataset, branch and write branch (the staging branch for
    stage_only), as IngestCore resolves them."""

    def current(self) -> str:
        """The head a write starts from, creating nothing: the write branch's head, else the
        branch's, else the commit a missing branch would start at; '' without the dataset."""

    def prepare(self, writing: bool) -> None:
        """Create a missing branch of an existing dataset; when `writing`, also a missing
        dataset and write branch, so that `current()` names the head to commit onto."""


@dataclass(frozen=True)
class _Plan:
    """A commit onto `head`: crystals added (key -> bytes), keys removed, duplicates seen."""

    head: str
    adds: dict[str, bytes]
    removes: list[str]
    duplicates: int


class IngestSession:
    """Collects one request's records; not thread-safe (one caller feeds it, `cancel` aside)."""

    def __init__(
        self,
        versions: VersionStore,
        repo: str,
        write_branch: str,
        target: IngestTarget,
        parsers: ParserPool,
        executor: Executor,
        limits: SessionLimits,
        heads: WriteHeads,
    ) -> None:
        self._versions, self._repo, self._branch = versions, repo, write_branch
        self._target, self._parsers, self._executor = target, parsers, executor
        self._limits, self._heads = limits, heads
        self._pending: list[Future[Parsed]] = []
        self._sources: dict[str, bytes] = {}
        self._removals: list[str] = []
        self._bytes = self._records = self._proto_index = 0
        self._cancelled = threading.Event()

    # -- feeding ------------------------------------------------------------------------------

    def add_cif(self, file_name: str, text: str) -> None:
        """Queue CIF text (complete data blocks) for parsing."""
        self._count_bytes(text, ".cif")
        source = self._target.source or file_name
        self._submit("cif", file_name, cif_batches(file_name, text, self._batch, source))

    def add_csv(self, file_name: str, text: str, first_row: int = 0) -> None:
        """Queue CSV text (header line + complete rows; rows numbered from `first_row`)."""
        self._count_bytes(text, ".csv")
        source = self._target.source or file_name
        batches = csv_batches(file_name, text, first_row, self._batch, source)
        self._submit("csv", file_name, batches)

    def add_crystals(self, messages: Sequence[bytes]) -> None:
        """Queue serialised `crystal_pb2.Crystal` messages."""
        self._bytes += sum(len(m) for m in messages)
        self._check_bytes()
        batches = proto_batches(messages, self._proto_index, self._batch, self._target.source)
        self._proto_index += len(messages)
        self._submit("proto", "", batches)

    def remove(self, content_hashes: Sequence[str]) -> None:
        """Remove these crystals from the branch in the same commit."""
        self._removals.extend(content_hashes)

    def wait_for_capacity(self, max_pending: int) -> None:
        """Block until at most `max_pending` batches are unparsed (backpressure)."""
        while sum(not f.done() for f in self._pending) > max_pending:
            wait([f for f in self._pending if not f.done()], return_when="FIRST_COMPLETED")

    def cancel(self) -> None:
        """Drop queued batches and refuse any write (the request failed or was abandoned); safe
        to call from another thread while `finish` runs."""
        self._cancelled.set()
        for future in self._pending:
            future.cancel()

    @property
    def _batch(self) -> int:
        return self._limits.batch_records

    def _count_bytes(self, text: str, suffix: str) -> None:
        data = text.encode("utf-8", errors="surrogateescape")  # the bytes as received
        self._bytes += len(data)
        self._check_bytes()
        self._sources[source_key(sha256_bytes(data), suffix.lstrip("."))] = data

    def _check_bytes(self) -> None:
        if self._bytes > self._limits.max_bytes:
            raise TooLarge(
                f"the request carries more than {self._limits.max_bytes} bytes of records;"
                " split it into several ingests"
            )

    def _submit(self, kind: str, file_name: str, batches: list[Batch]) -> None:
        self._records += sum(n for _, n in batches)
        if self._records > self._limits.max_records:
            raise TooLarge(
                f"the request carries more than {self._limits.max_records} records;"
                " split it into several ingests"
            )
        for request, n in batches:
            future = self._executor.submit(self._parse, kind, file_name, request, n)
            self._pending.append(future)

    def _parse(self, kind: str, file_name: str, request: dict, n: int) -> Parsed:
        return Parsed(kind, file_name, self._parsers.parse(request, n))

    # -- finishing ------------------------------------------------------------------------------

    def finish(self, before_write: Callable[[], None] = lambda: None) -> IngestResult:
        """Wait for the parsers, dedup, and commit once (see the module notes).

        Contract: `before_write()` runs once the records are parsed and sorted, before anything
        is written (dry runs and aborted ingests write nothing and skip it); it may raise to
        refuse the write, e.g. when too little of the client's deadline is left for the commit
        and the reply. Nothing is written once `cancel()` has been called (RequestAbandoned). A
        refused write leaves no trace. A request whose `request_id` names one of the last
        REQUEST_LOOKBACK commits of the branch (a retry whose first reply was lost) gets that
        commit back, not a second one."""
        parsed = [future.result() for future in self._pending]
        rejections, valid = sort_entries(parsed)
        for attempt in range(_COMMIT_ATTEMPTS):
            try:
                return self._commit(rejections, valid, before_write)
            except HeadMoved as exc:
                if self._target.expected_head or attempt == _COMMIT_ATTEMPTS - 1:
                    raise Conflict(f"{exc}; nothing was committed, retry the ingest") from None
        raise AssertionError("unreachable")

    def _commit(self, rejections, valid, before_write) -> IngestResult:
        target, head = self._target, self._heads.current()
        earlier = self._earlier_commit(head)
        if earlier is not None:
            return self._replayed(rejections, valid, earlier)
        self._check_expected(head)
        plan = self._plan(valid, head)
        aborted = bool(rejections) and target.reject_policy is RejectPolicy.ABORT
        if target.dry_run or aborted:
            return self._result(rejections, valid, plan, "")
        if self._cancelled.is_set():
            raise RequestAbandoned("the request was cancelled; nothing was written")
        before_write()
        self._heads.prepare(bool(plan.adds or plan.removes))
        now = self._heads.current()
        if now != head:  # the dataset was created just now, or a head moved meanwhile
            self._check_expected(now)
            plan = self._plan(valid, now)
        commit_id = self._write(plan) if plan.adds or plan.removes else ""
        return self._result(rejections, valid, plan, commit_id)

    def _check_expected(self, head: str) -> None:
        expected = self._target.expected_head
        if expected and head != expected:
            raise Conflict(f"branch head is {head or 'missing'}, not the expected {expected}")

    def _plan(self, valid: dict[str, list[bytes]], head: str) -> _Plan:
        """What committing the records onto `head` ('' for a dataset still to create) writes."""
        existing = self._versions.tree(self._repo, head, CRYSTALS_PREFIX) if head else {}
        adds = {k: blobs[0] for k, blobs in valid.items() if k not in existing}
        removes = sorted({crystal_key(h) for h in self._removals} & set(existing) - set(adds))
        duplicates = sum(len(v) for v in valid.values()) - len(adds)
        return _Plan(head, adds, removes, duplicates)

    def _write(self, plan: _Plan) -> str:
        target = self._target
        metadata = dict(target.metadata)
        if target.request_id:
            metadata[REQUEST_ID_KEY] = target.request_id
        commit = self._versions.commit(
            self._repo, self._branch, {**plan.adds, **self._sources}, plan.removes,
            target.message or f"ingest {len(plan.adds)} crystals", metadata,
            expected_head=plan.head,
        )  # fmt: skip
        return commit.id

    def _earlier_commit(self, head: str) -> Commit | None:
        """The commit this request's `request_id` already made on the branch, if any."""
        request_id = self._target.request_id
        if not (request_id and head):
            return None
        commits = self._versions.log(self._repo, head, limit=REQUEST_LOOKBACK)
        return next((c for c in commits if c.metadata.get(REQUEST_ID_KEY) == request_id), None)

    def _replayed(self, rejections, valid, commit: Commit) -> IngestResult:
        """The result of the earlier attempt that made `commit`, from the commit's changes."""
        parent = commit.parents[0] if commit.parents else ""
        changes = self._versions.diff(self._repo, parent, commit.id, CRYSTALS_PREFIX)
        adds = {c.key: b"" for c in changes if c.kind == "added"}
        removes = [c.key for c in changes if c.kind == "removed"]
        duplicates = sum(len(v) for v in valid.values()) - len(adds)
        return self._result(rejections, valid, _Plan(parent, adds, removes, duplicates), commit.id)

    def _result(self, rejections, valid, plan: _Plan, commit_id: str) -> IngestResult:
        target = self._target
        received = len(rejections) + sum(len(v) for v in valid.values())
        log.info(
            "ingest into %s/%s: %d received, %d new, %d duplicates, %d rejected, commit %s",
            target.dataset, self._branch, received, len(plan.adds), plan.duplicates,
            len(rejections), commit_id[:12] or "none",
        )  # fmt: skip
        limits = self._limits
        shown = listed(rejections, limits.max_rejections_listed, limits.max_bytes_listed)
        return IngestResult(
            dataset=target.dataset,
            branch=target.branch,
            commit_id="" if target.stage_only else commit_id,
            parent_commit_id=plan.head,
            num_received=received,
            num_accepted=len(plan.adds) if commit_id or target.dry_run else 0,
            num_rejected=len(rejections),
            num_duplicates=plan.duplicates,
            num_removed=len(plan.removes) if commit_id else 0,
            rejections=shown,
            rejections_truncated=len(shown) < len(rejections),
        )
