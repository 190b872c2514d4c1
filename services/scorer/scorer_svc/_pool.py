"""A pool of CHGNet worker processes owned by the server (`scorer_svc._worker` in each).

Workers are started with the `spawn` method (safe next to gRPC threads), load CHGNet once and
are reused; a worker that dies (a native crash, the OOM killer) or overruns its time limit is
killed and replaced on next use. `call` runs one request on one worker; `score` bisects a batch
whose worker died, down to single crystals, so one crystal that crashes the worker costs only
itself (error code "scorer_crash").
"""

import contextlib
import logging
import multiprocessing
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

from autoperi_data import CrystalArrays
from svc_kit import WorkerPool

from scorer_svc import _worker
from scorer_svc._model import ScoreOptions, Scores

log = logging.getLogger("scorer_svc.pool")

#: glibc malloc settings of the workers: CHGNet's forward allocates and frees tensors of a few MB
#: per layer, which glibc serves by mmap and returns at once, so every batch page-faults its
#: memory in again; two workers doing so side by side lost ~25 % of their CPU efficiency
#: (`autoperi bench score`, Perov-5 energies with moyopy: 2.61-2.85x -> 3.35-3.91x per wall s,
#: the baseline in the same processes). Kept: up to 32 MB blocks on the heap, 1 GB before trimming.
WORKER_MALLOC = (
    "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824"
    ":glibc.malloc.top_pad=67108864"
)
_ENVIRONMENT = threading.Lock()  # os.environ is process-wide: one worker start at a time


@dataclass(frozen=True)
class PoolLimits:
    """workers: processes (each holds a CHGNet, ~2.2 GB peak); num_threads: torch threads per
    worker; startup_timeout_s: for a worker to load CHGNet (not counted in a call's time);
    symmetry_cache_size: space groups each worker keeps by content hash (0: none);
    glibc_tunables: GLIBC_TUNABLES of the workers unless the environment sets it ("": glibc's
    defaults)."""

    workers: int = 1
    num_threads: int = 1
    startup_timeout_s: float = 300.0
    symmetry_cache_size: int = 4096
    glibc_tunables: str = WORKER_MALLOC


class WorkerDied(Exception):
    """The worker died during a call."""


class WorkerUnavailable(Exception):
    """No worker could be started (CHGNet failed to load or took too long)."""


class WorkerTimeout(Exception):
    """The call did not finish within its time limit (the worker was killed)."""


class WorkerError(Exception):
    """The worker raised; the message is its one-line description."""


@contextlib.contextmanager
def _environment(name: str, value: str):
    """`name` = `value` in os.environ for the block, unless it is set already or `value` is ""."""
    if not value or name in os.environ:
        yield
        return
    os.environ[name] = value
    try:
        yield
    finally:
        os.environ.pop(name, None)


class _Worker:
    """One CHGNet process and the parent's end of its pipe."""

    def __init__(self, limits: PoolLimits) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.proc = context.Process(
            target=_worker.serve, daemon=True,
            args=(child, limits.num_threads, limits.symmetry_cache_size),
            name="chgnet-worker",
        )  # fmt: skip
        with _ENVIRONMENT, _environment("GLIBC_TUNABLES", limits.glibc_tunables):
            self.proc.start()  # spawn: the child is a new interpreter with this environment
        child.close()
        try:
            self._receive(limits.startup_timeout_s)
        except (WorkerDied, WorkerTimeout) as exc:
            raise WorkerUnavailable(f"the CHGNet worker did not start: {exc}") from None

    def call(self, kind: str, args: tuple, timeout_s: float | None) -> Any:
        """The worker's result of `HANDLERS[kind](*args)` within `timeout_s` (None: no limit)."""
        try:
            self.conn.send((kind, args))
        except (OSError, ValueError):
            self.kill()
            raise WorkerDied("the CHGNet worker is gone") from None
        return self._receive(timeout_s)

    def _receive(self, timeout_s: float | None) -> Any:
        try:
            if not self.conn.poll(timeout_s):
                self.kill()
                raise WorkerTimeout(f"no result within {timeout_s:.1f}s")
            status, value = self.conn.recv()
        except (EOFError, OSError):
            self.kill()
            raise WorkerDied(f"the CHGNet worker died (exit code {self.proc.exitcode})") from None
        if status == "error":
            raise WorkerError(value)
        return value

    def kill(self) -> None:
        """Stop the process and close the pipe (idempotent)."""
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(timeout=10)
        self.conn.close()

    @property
    def alive(self) -> bool:
        return self.proc.is_alive() and not self.conn.closed


class PotentialPool:
    """Thread-safe pool of CHGNet workers, started lazily (or by `warm`), replaced when dead."""

    def __init__(self, limits: PoolLimits | None = None) -> None:
        self.limits = limits or PoolLimits()
        self._workers = WorkerPool(lambda: _Worker(self.limits), self.limits.workers)

    def warm(self) -> None:
        """Start the workers now (CHGNet loads take seconds each); calls wait until done."""
        self._workers.fill()

    def call(self, kind: str, args: tuple, deadline: float | None = None) -> tuple[Any, float]:
        """(result of the worker's `kind` handler, seconds waited for a free worker); raises
        WorkerDied, WorkerTimeout (also when `deadline`, a `time.monotonic()` value, has passed
        once a worker is free), WorkerError and WorkerUnavailable."""
        start = time.perf_counter()
        with self._workers.slot():
            waited = time.perf_counter() - start
            timeout = None if deadline is None else deadline - time.monotonic()
            if timeout is not None and timeout <= 0:
                raise WorkerTimeout("the deadline passed while waiting for a CHGNet worker")
            worker = self._workers.take()
            try:
                return worker.call(kind, args, timeout), waited
            finally:
                self._workers.give_back(worker)

    def score(
        self,
        items: list[CrystalArrays],
        options: ScoreOptions,
        batch_size: int,
        deadline: float | None,
    ) -> tuple[list[Scores], float]:
        """(Scores of `items` in order, seconds queued); a batch whose worker died is bisected.
        WorkerTimeout propagates (the caller decides: deadline exceeded or per-crystal error)."""
        try:
            return self.call("score", (items, options, batch_size), deadline)
        except WorkerDied as exc:
            if len(items) == 1:
                return [Scores.failed(0, "", "scorer_crash", str(exc))], 0.0
            log.warning("CHGNet worker died on a batch of %d, bisecting", len(items))
            mid = len(items) // 2
            left, waited = self.score(items[:mid], options, batch_size, deadline)
            right, _ = self.score(items[mid:], options, batch_size, deadline)
            for offset, result in enumerate(right):
                result.index = mid + offset
            return left + right, waited

    def cpu_seconds(self) -> float:
        """CPU seconds (user + system) used so far by the idle worker processes: call it
        between calls, when every worker is idle (the benchmark's measure)."""
        import psutil

        total = 0.0
        for worker in self._workers.idle_workers():
            with contextlib.suppress(psutil.Error):
                times = psutil.Process(worker.proc.pid).cpu_times()
                total += times.user + times.system
        return total

    def close(self) -> None:
        """Stop every idle worker (workers in use stop when their call returns)."""
        self._workers.close()
