"""One ingest: chunks go to the sandboxed parsers as they arrive; `finish` dedups and commits.

Nothing is written before `finish`, and `finish` writes one commit (or nothing): a request that
fails, is aborted or is cancelled leaves no trace in the stores.
"""

import base64
import logging
import re
from collections.abc import Sequence
from concurrent.futures import Executor, Future, wait
from dataclasses import dataclass
from typing import Any

from autoperi_data import CRYSTALS_PREFIX, crystal_key, source_key
from storage import HeadMoved, VersionStore, sha256_bytes
from svc_kit import Conflict, TooLarge

from ingest_svc._batches import Batch, cif_batches, csv_batches, proto_batches
from ingest_svc._model import IngestResult, IngestTarget, Rejection, RejectPolicy
from ingest_svc._sandbox import ParserPool

_COMMIT_ATTEMPTS = 20
_SURROGATES = re.compile("[\ud800-\udfff]")
log = logging.getLogger("ingest_svc.session")


@dataclass(frozen=True)
class SessionLimits:
    """Per-request limits: records, text bytes, parser batch size, rejections listed."""

    max_records: int = 100_000
    max_bytes: int = 256 << 20
    batch_records: int = 200
    max_rejections_listed: int = 1000


@dataclass(frozen=True)
class _Parsed:
    kind: str
    file_name: str
    entries: list[dict[str, Any]]


class IngestSession:
    """Collects one request's records; not thread-safe (one caller feeds it)."""

    def __init__(
        self,
        versions: VersionStore,
        repo: str,
        write_branch: str,
        target: IngestTarget,
        parsers: ParserPool,
        executor: Executor,
        limits: SessionLimits,
        prepare: Any,
    ) -> None:
        self._versions, self._repo, self._branch = versions, repo, write_branch
        self._target, self._parsers, self._executor = target, parsers, executor
        self._limits, self._prepare = limits, prepare
        self._pending: list[Future[_Parsed]] = []
        self._sources: dict[str, bytes] = {}
        self._removals: list[str] = []
        self._bytes = self._records = self._proto_index = 0

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
        """Drop queued batches (the request failed); nothing has been written."""
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

    def _parse(self, kind: str, file_name: str, request: dict, n: int) -> _Parsed:
        return _Parsed(kind, file_name, self._parsers.parse(request, n))

    # -- finishing ------------------------------------------------------------------------------

    def finish(self) -> IngestResult:
        """Wait for the parsers, dedup, and commit once (see the module notes)."""
        parsed = [future.result() for future in self._pending]
        rejections, valid = _sort_entries(parsed)
        received = len(rejections) + sum(len(v) for v in valid.values())
        for attempt in range(_COMMIT_ATTEMPTS):
            try:
                return self._commit(rejections, valid, received)
            except HeadMoved as exc:
                if self._target.expected_head or attempt == _COMMIT_ATTEMPTS - 1:
                    raise Conflict(f"{exc}; nothing was committed, retry the ingest") from None
        raise AssertionError("unreachable")

    def _commit(self, rejections, valid, received) -> IngestResult:
        target = self._target
        aborted = bool(rejections) and target.reject_policy is RejectPolicy.ABORT
        head = self._existing_head() if target.dry_run or aborted else self._prepare()
        if target.expected_head and head != target.expected_head:
            raise Conflict(f"branch head is {head}, not the expected {target.expected_head}")
        existing = self._versions.tree(self._repo, head, CRYSTALS_PREFIX) if head else {}
        adds = {k: blobs[0] for k, blobs in valid.items() if k not in existing}
        removes = sorted({crystal_key(h) for h in self._removals} & set(existing) - set(adds))
        duplicates = sum(len(v) for v in valid.values()) - len(adds)
        commit_id = ""
        if not (target.dry_run or aborted) and (adds or removes):
            message = target.message or f"ingest {len(adds)} crystals"
            commit = self._versions.commit(
                self._repo, self._branch, {**adds, **self._sources}, removes, message,
                dict(target.metadata), expected_head=head,
            )  # fmt: skip
            commit_id = commit.id
        written = bool(commit_id) and not target.stage_only
        log.info(
            "ingest into %s/%s: %d received, %d new, %d duplicates, %d rejected, commit %s",
            target.dataset, self._branch, received, len(adds), duplicates, len(rejections),
            commit_id[:12] or "none",
        )  # fmt: skip
        listed = rejections[: self._limits.max_rejections_listed]
        return IngestResult(
            dataset=target.dataset,
            branch=target.branch,
            commit_id=commit_id if written else "",
            parent_commit_id=head,
            num_received=received,
            num_accepted=len(adds) if commit_id or target.dry_run else 0,
            num_rejected=len(rejections),
            num_duplicates=duplicates,
            num_removed=len(removes) if commit_id else 0,
            rejections=tuple(listed),
            rejections_truncated=len(listed) < len(rejections),
        )

    def _existing_head(self) -> str:
        try:
            return self._versions.head(self._repo, self._branch)
        except Exception:  # a dry run into a dataset or branch that would be created
            return ""


def _sort_entries(parsed: list[_Parsed]) -> tuple[list[Rejection], dict[str, list[bytes]]]:
    """Rejections in stream order, and valid records by tree key (first occurrence first)."""
    rejections: list[Rejection] = []
    valid: dict[str, list[bytes]] = {}
    for batch in parsed:
        for entry in batch.entries:
            key = _record_key(batch, entry)
            if entry["error"] is not None:
                code, _, message = _printable(entry["error"]).partition(": ")
                rejections.append(Rejection(_printable(key), code, message or code))
                continue
            blob = base64.b64decode(entry["crystal"])
            valid.setdefault(crystal_key(entry["hash"]), []).append(blob)
    return rejections, valid


def _printable(text: str) -> str:
    """`text` with the surrogate escapes of bytes that were not UTF-8 (block names, row ids of
    raw chunks) shown as U+FFFD, so it fits a proto string."""
    return _SURROGATES.sub("\ufffd", text)


def _record_key(batch: _Parsed, entry: dict[str, Any]) -> str:
    index, key = entry["index"], entry["key"]
    if batch.kind == "csv":
        return batch.file_name if index < 0 else f"{batch.file_name}:{index}"
    if batch.kind == "cif":
        return batch.file_name if index < 0 else f"{batch.file_name}#{key or index}"
    return key or str(index)
