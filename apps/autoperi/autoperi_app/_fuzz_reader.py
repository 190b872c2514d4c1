"""The CIF reader under fuzzing: `autoperi_data.read_records` in worker processes, with a hang
limit per input.

The reader's contract (`read_records`): a file that cannot be read as a whole raises
`xtal.CrystalError`; every record is then either a crystal or an error "<code>: <message>" with
a code of `xtal.ERROR_CODES`. Any other exception is a crash; a record breaking that shape is a
contract violation. A record whose error is "cif_parse: unexpected <Exception>: ..." is within
the contract (the reader's catch-all for one record) and is counted as `masked` with its
exception type. An input whose read runs longer than `hang_s` (seconds, wall; building the input
is not counted) is a hang: its worker is killed and replaced. A worker that dies (a native crash,
the memory limit) is a crash of the input it was reading. Workers are spawned processes limited
to `memory_mb` of address space.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import resource
import tempfile
import time
import traceback
from collections import Counter, deque
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from autoperi_app._fuzz_inputs import FuzzCorpus, InputRef, save_finding

STREAM = "reader"
_MASKED = "cif_parse: unexpected "


@dataclass(frozen=True)
class ReaderPlan:
    """How many inputs, from which seed, in how many workers, with which hang limit."""

    inputs: int
    seed: int = 0
    workers: int = 2
    hang_s: float = 5.0
    chunk: int = 200  # inputs per job sent to a worker
    memory_mb: int = 2048
    ready_timeout_s: float = 300.0  # a spawned worker's imports, on a loaded machine


def read_outcome(path: Path) -> dict[str, Any]:
    """What `read_records(path)` gives, judged against its contract (see the module doc)."""
    import autoperi_data
    import xtal

    try:
        records = list(autoperi_data.read_records(path))
    except xtal.CrystalError as exc:
        return {"kind": "file_error", "code": exc.code}
    except Exception as exc:  # the finding: anything else escaping the reader
        return {"kind": "crash", "error": _error_text(exc), "where": _where(exc)}
    codes = [r.code for r in records]
    violations = [
        f"record {r.index}: {r.error!r} / crystal {r.crystal is not None}"
        for r in records
        if (r.crystal is None) == (r.error is None) or (r.code and r.code not in xtal.ERROR_CODES)
    ]
    masked = [r.error[len(_MASKED) :].split(":", 1)[0] for r in records if _is_masked(r.error)]
    return {"kind": "records", "codes": codes, "violations": violations, "masked": masked}


def _is_masked(error: str | None) -> bool:
    return error is not None and error.startswith(_MASKED)


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]


def _where(exc: BaseException) -> str:
    """The innermost frame of the traceback (file:line in function)."""
    frames = traceback.extract_tb(exc.__traceback__)
    return f"{frames[-1].filename}:{frames[-1].lineno} in {frames[-1].name}" if frames else ""


def _worker(conn: Connection, dirs: list[str], seed: int, memory_mb: int, scratch: str) -> None:
    """Worker loop: build and read each input of the (start, stop) jobs sent; ("start", index)
    when the read begins, ("done", index, outcome, wall s, CPU s) when it ends; a None job ends
    the loop. "ready" is sent once every seed file has been read unmutated (the reader's lazy
    imports done: the hang clock starts after them)."""
    limit = memory_mb << 20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    corpus = FuzzCorpus.load([Path(d) for d in dirs])
    for name, data in corpus.seeds:
        (Path(scratch) / name).write_bytes(data)
        read_outcome(Path(scratch) / name)
    conn.send("ready")
    while (job := conn.recv()) is not None:
        for index in range(*job):
            item = corpus.input(seed, STREAM, index)
            path = Path(scratch) / f"input{item.suffix}"
            path.write_bytes(item.data)
            conn.send(("start", index))
            began, cpu = time.perf_counter(), time.process_time()
            outcome = read_outcome(path)
            outcome.update(mutations=item.mutations, bytes=len(item.data))
            elapsed = (time.perf_counter() - began, time.process_time() - cpu)
            conn.send(("done", index, outcome, *elapsed))


class _Worker:
    """One worker process, its pipe, and the inputs it owes (a contiguous range, in order)."""

    def __init__(self, args: tuple, ready_timeout_s: float) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker, args=(child, *args), daemon=True)
        self.process.start()
        child.close()
        self.pending: deque[int] = deque()
        self.since = time.monotonic()  # of the last message (or job)
        self.reading = False  # between "start" and "done" of pending[0]
        try:
            ready = self.conn.poll(ready_timeout_s) and self.conn.recv() == "ready"
        except (EOFError, OSError):
            ready = False
        if not ready:
            code = self.kill()
            raise RuntimeError(f"a fuzz worker did not start (exit code {code})")

    def give(self, job: tuple[int, int]) -> None:
        """Send the inputs [start, stop) to build and read."""
        self.pending.extend(range(*job))
        self.conn.send(job)
        self.since, self.reading = time.monotonic(), False

    def kill(self) -> int | None:
        """End the process at once; its exit code (negative: the signal)."""
        self.process.kill()
        self.process.join(10)
        return self.process.exitcode

    def stop(self) -> None:
        """Ask the process to end, then make sure it did."""
        with contextlib.suppress(OSError, ValueError):
            self.conn.send(None)
        self.process.join(10)
        self.kill()


class ReaderTally:
    """Counts of every outcome, the findings, and the slowest inputs."""

    def __init__(self) -> None:
        self.inputs = self.records = self.accepted = self.input_bytes = 0
        self.cpu_s = self.read_s = 0.0
        self.rejected: Counter[str] = Counter()
        self.file_errors: Counter[str] = Counter()
        self.masked: Counter[str] = Counter()
        self.mutations: Counter[str] = Counter()
        self.findings: dict[str, list[dict[str, Any]]] = {"crash": [], "hang": [], "violation": []}
        self.finding_counts: Counter[str] = Counter()
        self.slowest: list[tuple[float, int, str]] = []

    def add(self, index: int, outcome: dict[str, Any], wall: float, cpu: float) -> None:
        """Count one input's outcome (`read_outcome` plus mutations and bytes)."""
        self.inputs += 1
        self.read_s, self.cpu_s, self.input_bytes = (
            self.read_s + wall, self.cpu_s + cpu, self.input_bytes + outcome["bytes"]
        )  # fmt: skip
        self.mutations.update(outcome["mutations"])
        self.slowest = sorted([*self.slowest, (wall, index, "+".join(outcome["mutations"]))])[-5:]
        if outcome["kind"] == "file_error":
            self.file_errors[outcome["code"]] += 1
        elif outcome["kind"] == "records":
            self._records(index, outcome)

    def _records(self, index: int, outcome: dict[str, Any]) -> None:
        codes = outcome["codes"]
        self.records += len(codes)
        self.accepted += codes.count(None)
        self.rejected.update(c for c in codes if c is not None)
        self.masked.update(outcome["masked"])

    def summary(self) -> dict[str, Any]:
        """The tally as JSON-ready values."""
        return {
            "inputs": self.inputs,
            "input_bytes": self.input_bytes,
            "records": self.records,
            "accepted_records": self.accepted,
            "rejected_records": dict(self.rejected.most_common()),
            "file_errors": dict(self.file_errors.most_common()),
            "masked_exceptions": dict(self.masked.most_common()),
            "crashes": self.finding_counts["crash"],
            "hangs": self.finding_counts["hang"],
            "contract_violations": self.finding_counts["violation"],
            "findings": [f for kind in self.findings.values() for f in kind],
            "mutations": dict(self.mutations.most_common()),
            "reader_cpu_seconds": round(self.cpu_s, 1),
            "mean_ms_per_input": round(1000 * self.read_s / max(1, self.inputs), 3),
            "slowest_inputs": [
                {"index": i, "seconds": round(s, 3), "mutations": m} for s, i, m in self.slowest
            ][::-1],
        }


MAX_FINDINGS_LISTED = 50  # per kind; the counts stay exact
BUILD_LIMIT_S = 120.0  # building one input (the mutations) in a worker


def fuzz_reader(dirs: list[Path], plan: ReaderPlan, findings_dir: Path) -> dict[str, Any]:
    """Read `plan.inputs` inputs of the reader stream; the tally's summary plus wall time,
    throughput and worker restarts. Each finding's input is saved in `findings_dir`."""
    with tempfile.TemporaryDirectory(prefix="autoperi-fuzz-") as scratch:
        run = _ReaderRun(dirs, plan, findings_dir, Path(scratch))
        began = time.perf_counter()
        run.run()
        wall = time.perf_counter() - began
    return {
        **run.tally.summary(),
        "workers": plan.workers,
        "worker_restarts": run.spawned - min(plan.workers, run.jobs_total),
        "hang_limit_s": plan.hang_s,
        "wall_seconds": round(wall, 1),
        "inputs_per_second": round(run.tally.inputs / wall, 1),
    }


class _ReaderRun:
    """Feeds jobs to the workers, collects results, replaces workers that hang or die."""

    def __init__(self, dirs: list[Path], plan: ReaderPlan, findings: Path, scratch: Path) -> None:
        self.dirs, self.plan, self.findings, self.scratch = dirs, plan, findings, scratch
        self.corpus = FuzzCorpus.load(dirs)
        starts = range(0, plan.inputs, plan.chunk)
        self.jobs = deque((s, min(s + plan.chunk, plan.inputs)) for s in starts)
        self.jobs_total = len(self.jobs)
        self.tally = ReaderTally()
        self.workers: list[_Worker] = []
        self.spawned = 0

    def run(self) -> None:
        """Until every input is read (or lost to a hang or a crash)."""
        try:
            for _ in range(min(self.plan.workers, len(self.jobs))):
                self._start_worker()
            while self.workers:
                self._step()
        finally:
            for worker in self.workers:
                worker.stop()

    def _start_worker(self) -> None:
        self.spawned += 1
        scratch = self.scratch / f"worker-{self.spawned}"
        scratch.mkdir()
        dirs = [str(d) for d in self.dirs]
        args = (dirs, self.plan.seed, self.plan.memory_mb, str(scratch))
        worker = _Worker(args, self.plan.ready_timeout_s)
        self.workers.append(worker)
        self._next_job(worker)

    def _next_job(self, worker: _Worker) -> None:
        if self.jobs:
            worker.give(self.jobs.popleft())
        else:
            worker.stop()
            self.workers.remove(worker)

    def _step(self) -> None:
        ready = wait([w.conn for w in self.workers], timeout=min(0.2, self.plan.hang_s))
        for worker in [w for w in self.workers if w.conn in ready]:
            self._drain(worker)
        now = time.monotonic()
        for worker in list(self.workers):
            late = now - worker.since > (self.plan.hang_s if worker.reading else BUILD_LIMIT_S)
            if not late or not worker.pending or worker.conn.poll(0):  # messages waiting: not late
                continue
            if not worker.reading:  # a bug of the fuzzer, not of the reader
                raise RuntimeError(f"building reader input {worker.pending[0]} took too long")
            self._lose(worker, "hang", f"no result within {self.plan.hang_s} s (killed)")

    def _drain(self, worker: _Worker) -> None:
        """Handle every message the worker has sent (a closed pipe: the worker died)."""
        while worker in self.workers and worker.conn.poll(0):
            try:
                message = worker.conn.recv()
            except (EOFError, OSError):
                self._lose(worker, "crash", "the worker process died")
                return
            worker.since = time.monotonic()
            worker.reading = message[0] == "start"
            if message[0] == "done":
                self._done(worker, *message[1:])

    def _done(self, worker: _Worker, index: int, outcome: dict, wall: float, cpu: float) -> None:
        worker.pending.popleft()
        self.tally.add(index, outcome, wall, cpu)
        self._judge(index, outcome, wall)
        if not worker.pending:
            self._next_job(worker)

    def _judge(self, index: int, outcome: dict[str, Any], wall: float) -> None:
        if outcome["kind"] == "crash":
            self._finding("crash", index, f"{outcome['error']} at {outcome['where']}")
        for violation in outcome.get("violations", [])[:1]:
            self._finding("violation", index, violation)
        if wall > self.plan.hang_s:
            self._finding("hang", index, f"read in {wall:.1f} s")

    def _lose(self, worker: _Worker, kind: str, detail: str) -> None:
        """The worker's current input is a finding; a new worker takes the rest of its job."""
        index, rest = worker.pending[0], list(worker.pending)[1:]
        code = worker.kill()
        self.workers.remove(worker)
        self.tally.inputs += 1
        self._finding(kind, index, f"{detail} (exit code {code})" if kind == "crash" else detail)
        if rest:
            self.jobs.appendleft((rest[0], rest[-1] + 1))
        if self.jobs:
            self._start_worker()

    def _finding(self, kind: str, index: int, detail: str) -> None:
        self.tally.finding_counts[kind] += 1
        if len(self.tally.findings[kind]) >= MAX_FINDINGS_LISTED:
            return
        ref = InputRef(self.plan.seed, STREAM, index)
        finding = save_finding(self.findings, kind, ref, ref.of(self.corpus), detail)
        self.tally.findings[kind].append(finding)
