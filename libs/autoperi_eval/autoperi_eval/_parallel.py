"""A process pool over all cores for the per-structure work (fingerprints, matching, symmetry).

Workers are started with the `spawn` method (safe next to torch and threads in the parent) and
receive chunks of items, so the per-task overhead is paid once per chunk. With one worker, or
few items, the work runs in the calling process.
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from multiprocessing import get_context
from typing import Any

#: progress(stage, done, total): called as work completes.
ProgressFn = Callable[[str, int, int], None]


def available_cpus() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def quiet_worker() -> None:
    """Worker initializer: no library warnings, and the stderr of native code (spglib prints its
    failures there) to /dev/null; errors still reach the caller as exceptions."""
    warnings.filterwarnings("ignore")
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)


def _start_worker(initializer: Callable[[], None], parent: int) -> None:
    """Worker start: exit when the parent process is gone (killed before it could stop the pool,
    a worker would otherwise keep its CPU and memory, CHGNet's 2 GB included), then run
    `initializer`."""
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()
    initializer()


def _exit_with(parent: int, every_s: float = 1.0) -> None:
    while os.getppid() == parent:
        time.sleep(every_s)
    os._exit(1)


def _run_chunk(fn: Callable[[Any], Any], chunk: list[Any]) -> list[Any]:
    return [fn(item) for item in chunk]


class Pool:
    """Maps a top-level function over items in chunks on `n_workers` processes.

    The executor starts on first use and is reused by later `map` calls until `close`.
    `initializer` runs once in each worker process. Work runs in-process (with warnings
    silenced) when there is one worker or fewer than `inline_below` items; `inline_below=0`
    always uses worker processes (for work that needs the initializer or must not touch the
    caller's memory).
    """

    def __init__(
        self,
        n_workers: int | None = None,
        initializer: Callable[[], None] = quiet_worker,
        inline_below: int = 8,
    ) -> None:
        self.n_workers = max(1, n_workers or available_cpus())
        self._initializer = initializer
        self._inline_below = inline_below
        self._executor: ProcessPoolExecutor | None = None

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the worker processes."""
        if self._executor is not None:
            self._executor.shutdown(cancel_futures=True)
            self._executor = None

    def _inline(self, fn: Callable[[Any], Any], items: Sequence[Any], report: Callable) -> list:
        out = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for item in items:
                out.append(fn(item))
                report(1)
        return out

    def map(
        self,
        fn: Callable[[Any], Any],
        items: Sequence[Any],
        *,
        chunk_size: int = 16,
        stage: str = "",
        progress: ProgressFn | None = None,
    ) -> list[Any]:
        """`[fn(x) for x in items]`, computed in parallel; order is preserved."""
        done = 0

        def report(n: int) -> None:
            nonlocal done
            done += n
            if progress is not None:
                progress(stage, done, len(items))

        if not items:
            return []
        if self._inline_below > 0 and (self.n_workers == 1 or len(items) < self._inline_below):
            return self._inline(fn, items, report)
        if self._executor is None:
            self._executor = ProcessPoolExecutor(
                self.n_workers,
                mp_context=get_context("spawn"),
                initializer=_start_worker,
                initargs=(self._initializer, os.getpid()),
            )
        size = max(1, min(chunk_size, -(-len(items) // (4 * self.n_workers))))
        starts = range(0, len(items), size)
        pending: dict[Future, int] = {
            self._executor.submit(_run_chunk, fn, list(items[s : s + size])): s for s in starts
        }
        results: dict[int, list[Any]] = {}
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                start = pending.pop(future)
                results[start] = future.result()
                report(len(results[start]))
        return [value for s in starts for value in results[s]]


def pool_compute(
    pool: Pool,
    fn: Callable[[Any], Any],
    stage: str,
    progress: ProgressFn | None,
    chunk_size: int = 8,
) -> Callable[[list[Any], int, int], list[Any]]:
    """A `compute(items, done_before, n_missing)` for `Cache.cached_compute` that maps `fn` on
    the pool and reports progress over the whole computation, not per flushed batch."""

    def compute(items: list[Any], before: int, total: int) -> list[Any]:
        def relay(_stage: str, n: int, _total: int) -> None:
            if progress is not None:
                progress(stage, before + n, total)

        return pool.map(fn, items, chunk_size=chunk_size, stage=stage, progress=relay)

    return compute
