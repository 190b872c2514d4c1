"""Fair sharing of the parser workers between ingests: a big upload cannot starve small ones.

Each ingest submits its parse jobs to a `Lane` of one `FairScheduler`, whose threads (one per
parser worker) take the next job from the lane with the fewest jobs running, among those the
lane served longest ago (a new lane first). So a lone ingest uses every worker, and an ingest
that arrives while another holds them all gets the next free worker: it waits for one job of the
other (one parser batch), not for all of them.
"""

import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any

_Job = tuple[Future, Callable[..., Any], tuple[Any, ...]]


class Lane(Executor):
    """One ingest's queue of jobs in a FairScheduler (an Executor: `submit` returns a Future;
    a queued job is dropped by cancelling its future, `shutdown` does nothing)."""

    def __init__(self, scheduler: "FairScheduler") -> None:
        self._scheduler = scheduler
        self.jobs: deque[_Job] = deque()
        self.running = 0
        self.served = -1  # when a job of this lane last started (a tick), -1: never

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        """Queue `fn(*args)` (no keyword arguments) behind this lane's earlier jobs."""
        if kwargs:
            raise TypeError("Lane.submit takes positional arguments only")
        return self._scheduler._put(self, fn, args)


class FairScheduler:
    """Runs the jobs of many lanes on `threads` threads, sharing them fairly (module notes).

    Contract: with `threads` equal to the parser workers and no other user of the pool, a job
    of a lane with nothing running starts as soon as any running job ends."""

    def __init__(self, threads: int, name: str = "fair") -> None:
        self._ready = threading.Condition()
        self._waiting: list[Lane] = []  # lanes with queued jobs
        self._ticks = 0
        self._closed = False
        for i in range(threads):
            threading.Thread(target=self._serve, name=f"{name}-{i}", daemon=True).start()

    def lane(self) -> Lane:
        """A new lane (one per ingest)."""
        return Lane(self)

    def shutdown(self) -> None:
        """Cancel every queued job and stop the threads once their running jobs end."""
        with self._ready:
            self._closed = True
            for lane in self._waiting:
                _cancel(lane.jobs)
            self._waiting.clear()
            self._ready.notify_all()

    def _put(self, lane: Lane, fn: Callable[..., Any], args: tuple[Any, ...]) -> Future:
        future: Future = Future()
        with self._ready:
            if self._closed:
                raise RuntimeError("the parser scheduler is shut down")
            lane.jobs.append((future, fn, args))
            if lane not in self._waiting:
                self._waiting.append(lane)
            self._ready.notify()
        return future

    def _next(self) -> tuple[Lane, _Job] | None:
        """The next job (None once shut down), its lane's running count raised."""
        with self._ready:
            while not self._waiting and not self._closed:
                self._ready.wait()
            if self._closed:
                return None
            lane = min(self._waiting, key=lambda w: (w.running, w.served))
            job = lane.jobs.popleft()
            if not lane.jobs:
                self._waiting.remove(lane)
            lane.running += 1
            lane.served, self._ticks = self._ticks, self._ticks + 1
            return lane, job

    def _serve(self) -> None:
        while (taken := self._next()) is not None:
            lane, (future, fn, args) = taken
            try:
                if future.set_running_or_notify_cancel():
                    _run(future, fn, args)
            finally:
                with self._ready:
                    lane.running -= 1


def _run(future: Future, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    try:
        result = fn(*args)
    except BaseException as exc:
        future.set_exception(exc)
    else:
        future.set_result(result)


def _cancel(jobs: deque[_Job]) -> None:
    while jobs:
        jobs.popleft()[0].cancel()
