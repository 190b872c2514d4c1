"""The ingest service under fuzzing: mutated CIF files through a real server, over a socket.

A real ingest server (`ingest_svc.create_server` over a temporary local store, on a free port)
gets the inputs of the "ingest" stream in Ingest calls of `files_per_call` files, one after the
other, each with its own request_id, sent as the ingest client sends files (`file_requests`).
Checked per call, against the branch as GetDataset shows it just before and after:
- the status is OK (a bad record is a rejected record, never an error of the call);
- the reply adds up (received = accepted + rejected + duplicates; every rejection has a code
  and a message);
- all or nothing: with a commit_id, it is the new head, its parent the old head, and the branch
  grew by exactly num_accepted (> 0) crystals; without one, head and count are unchanged and
  nothing was accepted. Anything else is a partial commit.
Every `retry_every`-th call that committed is sent again with the same request_id: it must
return the same commit and move nothing. At the end the branch holds the sum of num_accepted.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from autoperi_app._fuzz_inputs import FuzzCorpus, FuzzInput, InputRef, save_finding

STREAM = "ingest"
DATASET = "fuzz"


@dataclass(frozen=True)
class IngestPlan:
    """How many inputs, in calls of how many files, from which seed."""

    inputs: int
    seed: int = 0
    files_per_call: int = 50
    retry_every: int = 10
    call_timeout_s: float = 300.0


@dataclass(frozen=True)
class _Head:
    commit: str
    crystals: int


class _Call:
    """One Ingest call's inputs, written as files the client reads."""

    def __init__(self, corpus: FuzzCorpus, plan: IngestPlan, number: int, scratch: Path) -> None:
        first = number * plan.files_per_call
        stop = min(first + plan.files_per_call, plan.inputs)
        self.number = number
        self.refs = [InputRef(plan.seed, STREAM, i) for i in range(first, stop)]
        self.items: list[FuzzInput] = [ref.of(corpus) for ref in self.refs]
        self.request_id = f"fuzz-{plan.seed}-{number}"
        self.client_refused = 0
        self.paths = []
        for ref, item in zip(self.refs, self.items, strict=True):
            self.paths.append(scratch / f"fuzz-{ref.index}{item.suffix}")
            self.paths[-1].write_bytes(item.data)

    def messages(self) -> list:
        """The header, then each file as the client sends it (a file the client refuses is
        left out; `client_refused` counts them)."""
        from ingest_svc.client import file_requests, header_request
        from xtal import CrystalError

        header = header_request(
            DATASET, create_dataset=True, request_id=self.request_id, message=self.request_id
        )
        out, self.client_refused = [header], 0
        for path in self.paths:
            try:
                out.extend(file_requests(path))
            except CrystalError:
                self.client_refused += 1
        return out


class IngestTally:
    """Counts over the calls, and the problems found."""

    def __init__(self) -> None:
        self.calls = self.inputs = self.commits = self.retries = self.client_refused = 0
        self.received = self.accepted = self.rejected = self.duplicates = 0
        self.codes: Counter[str] = Counter()
        self.statuses: Counter[str] = Counter()
        self.problems: Counter[str] = Counter()
        self.findings: list[dict[str, Any]] = []
        self.latencies: list[float] = []

    def reply(self, call: _Call, reply, seconds: float) -> None:
        """Count an OK reply."""
        self.calls, self.inputs = self.calls + 1, self.inputs + len(call.items)
        self.statuses["OK"] += 1
        self.latencies.append(seconds)
        self.client_refused += call.client_refused
        self.received += reply.num_received
        self.accepted += reply.num_accepted
        self.rejected += reply.num_rejected
        self.duplicates += reply.num_duplicates
        self.commits += bool(reply.commit_id)
        self.codes.update(r.code for r in reply.rejected_records)

    def summary(self) -> dict[str, Any]:
        """The tally as JSON-ready values."""
        ms = np.array(self.latencies or [0.0]) * 1000
        return {
            "calls": self.calls,
            "inputs": self.inputs,
            "statuses": dict(self.statuses),
            "non_ok_statuses": sum(n for s, n in self.statuses.items() if s != "OK"),
            "partial_commits": self.problems["partial_commit"],
            "problems": dict(self.problems),
            "commits": self.commits,
            "retries_checked": self.retries,
            "client_refused_files": self.client_refused,
            "records_received": self.received,
            "records_accepted": self.accepted,
            "records_rejected": self.rejected,
            "records_duplicate": self.duplicates,
            "rejection_codes": dict(self.codes.most_common()),
            "call_p50_ms": round(float(np.percentile(ms, 50)), 1),
            "call_p99_ms": round(float(np.percentile(ms, 99)), 1),
            "findings": self.findings,
        }


def fuzz_ingest(dirs: list[Path], plan: IngestPlan, findings_dir: Path) -> dict[str, Any]:
    """Run the calls against a fresh server (see the module doc); the tally's summary plus
    wall time and throughput. The inputs of a call with a problem are saved in findings_dir."""
    import grpc
    from autoperi.ingest.v1 import ingest_pb2_grpc

    corpus, tally = FuzzCorpus.load(dirs), IngestTally()
    with (
        tempfile.TemporaryDirectory(prefix="autoperi-fuzz-ingest-") as tmp,
        _server(Path(tmp) / "store") as address,
        grpc.insecure_channel(address) as channel,
    ):
        stub = ingest_pb2_grpc.IngestServiceStub(channel)
        began = time.perf_counter()
        for number in range(-(-plan.inputs // plan.files_per_call)):
            _run_call(stub, _Call(corpus, plan, number, Path(tmp)), plan, tally, findings_dir)
        _check_total(stub, tally)
        wall = time.perf_counter() - began
    return {
        **tally.summary(),
        "files_per_call": plan.files_per_call,
        "wall_seconds": round(wall, 1),
        "inputs_per_second": round(tally.inputs / wall, 1),
    }


@contextlib.contextmanager
def _server(store: Path) -> Iterator[str]:
    """The address of a started ingest server over a local store at `store` (default settings,
    plaintext, a free port), stopped on exit."""
    from ingest_svc import IngestDeps, IngestSettings, create_server
    from ingest_svc.testing import serving
    from storage import LocalObjectStore, LocalVersionStore

    versions = LocalVersionStore(LocalObjectStore(store, durable=False))
    settings = IngestSettings(host="127.0.0.1", port=0, log_json=False, log_level="WARNING")
    with serving(lambda: create_server(settings, IngestDeps(versions))) as server:
        yield server.address


def _run_call(stub, call: _Call, plan: IngestPlan, tally: IngestTally, findings: Path) -> None:
    import grpc

    before, began = _head(stub), time.perf_counter()
    try:
        reply = stub.Ingest(iter(call.messages()), timeout=plan.call_timeout_s)
    except grpc.RpcError as error:
        tally.calls, tally.inputs = tally.calls + 1, tally.inputs + len(call.items)
        tally.statuses[error.code().name] += 1
        moved = _head(stub) != before
        _problem(tally, call, "partial_commit" if moved else "status", error.details(), findings)
        return
    tally.reply(call, reply, time.perf_counter() - began)
    after = _head(stub)
    for kind, detail in _commit_problems(reply, before, after):
        _problem(tally, call, kind, detail, findings)
    if reply.commit_id and (tally.commits - 1) % plan.retry_every == 0:
        _retry(stub, call, reply, tally, findings)


def _commit_problems(reply, before: _Head, after: _Head) -> list[tuple[str, str]]:
    """(kind, detail) of each way the reply and the branch break all-or-nothing."""
    problems = []
    total = reply.num_accepted + reply.num_rejected + reply.num_duplicates
    if reply.num_received != total:
        problems.append(("bad_counts", f"received {reply.num_received} != {total}"))
    if any(not (r.code and r.message) for r in reply.rejected_records):
        problems.append(("bad_rejection", "a rejected record without a code or a message"))
    grew = after.crystals - before.crystals
    if reply.commit_id:  # (a new dataset's first ingest has its creation commit as parent)
        parent_ok = reply.parent_commit_id == before.commit or not before.commit
        ok = parent_ok and reply.commit_id == after.commit != before.commit
        ok = ok and grew == reply.num_accepted > 0
    else:
        ok = after == before and reply.num_accepted == 0
    if not ok:
        detail = f"commit {reply.commit_id!r}, {reply.num_accepted} accepted; {before} -> {after}"
        problems.append(("partial_commit", detail))
    return problems


def _retry(stub, call: _Call, first, tally: IngestTally, findings: Path) -> None:
    """The same call again (same request_id): the same commit back, nothing moved."""
    before = _head(stub)
    again = stub.Ingest(iter(call.messages()), timeout=300)
    tally.retries += 1
    if again.commit_id != first.commit_id or _head(stub) != before:
        detail = f"retry gave {again.commit_id!r}, first {first.commit_id!r}"
        _problem(tally, call, "retry_mismatch", detail, findings)


def _check_total(stub, tally: IngestTally) -> None:
    """The branch holds exactly the crystals the replies accepted."""
    head = _head(stub)
    if head.crystals != tally.accepted:
        tally.problems["total_mismatch"] += 1
        tally.findings.append({"kind": "total_mismatch", "detail": f"{head} vs {tally.accepted}"})


def _head(stub) -> _Head:
    """The head commit and crystal count of the dataset's main branch ('' and 0 before any)."""
    import grpc
    from autoperi.ingest.v1 import ingest_pb2

    try:
        reply = stub.GetDataset(ingest_pb2.GetDatasetRequest(dataset=DATASET), timeout=60)
    except grpc.RpcError as error:
        if error.code() == grpc.StatusCode.NOT_FOUND:
            return _Head("", 0)
        raise
    main = next(b for b in reply.dataset.branches if b.name == "main")
    return _Head(main.head_commit_id, main.num_crystals)


def _problem(tally: IngestTally, call: _Call, kind: str, detail: str, findings: Path) -> None:
    """Count a problem of a call and save its inputs (those of the first 20 problems)."""
    tally.problems[kind] += 1
    if len(tally.findings) >= 20:
        return
    for ref, item in zip(call.refs, call.items, strict=True):
        save_finding(findings, kind, ref, item, detail)
    first, last = call.refs[0].index, call.refs[-1].index
    tally.findings.append(
        {"kind": kind, "call": call.number, "request_id": call.request_id, "detail": detail[:500],
         "inputs": f"{STREAM} stream, seed {call.refs[0].seed}, indices {first}..{last}",
         "saved": str(findings / f"{kind}-{STREAM}-{call.refs[0].seed}-*")}
    )  # fmt: skip
