"""A thread-safe pool of worker processes, shared by the services that run untrusted or heavy work
out of process (the ingest parser sandbox, the scorer's CHGNet workers).

At most `size` workers exist at once; they start lazily (`factory()`), are reused most recently
returned first, and are replaced when they die. A worker is anything with an `alive` property and
an idempotent `kill()`.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar


class Worker(Protocol):
    @property
    def alive(self) -> bool: ...

    def kill(self) -> None: ...


W = TypeVar("W", bound=Worker)


class WorkerPool(Generic[W]):
    """Usage: `with pool.slot(): worker = pool.take(); try: ... finally: pool.give_back(worker)`.

    `slot()` bounds the workers in use to `size`; `take()` (inside a slot) returns an idle live
    worker or starts one; `give_back` keeps a live worker for reuse and kills any other (or every
    worker once the pool is closed)."""

    def __init__(self, factory: Callable[[], W], size: int) -> None:
        self.factory, self.size = factory, size
        self._idle: queue.LifoQueue[W] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(size)
        self.closed = False

    def slot(self) -> threading.BoundedSemaphore:
        """A context manager holding one of the `size` slots."""
        return self._slots

    def take(self) -> W:
        while True:
            try:
                worker = self._idle.get_nowait()
            except queue.Empty:
                return self.factory()
            if worker.alive:
                return worker
            worker.kill()

    def give_back(self, worker: W) -> None:
        if worker.alive and not self.closed:
            self._idle.put(worker)
        else:
            worker.kill()

    def fill(self) -> None:
        """Start every worker now (holding all slots while they start), unless closed."""
        held = 0
        try:
            for _ in range(self.size):
                self._slots.acquire()
                held += 1
            while self._idle.qsize() < self.size and not self.closed:
                self._idle.put(self.factory())
            if self.closed:
                self.close()
        finally:
            for _ in range(held):
                self._slots.release()

    def idle_workers(self) -> list[W]:
        """The workers not in use right now (a snapshot)."""
        return list(self._idle.queue)

    def close(self) -> None:
        """Stop every idle worker; workers in use stop when they are given back."""
        self.closed = True
        while True:
            try:
                self._idle.get_nowait().kill()
            except queue.Empty:
                return
