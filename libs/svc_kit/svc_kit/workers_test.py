"""WorkerPool: lazy start, reuse, replacement of dead workers, bounded slots, close."""

import subprocess
import sys

from svc_kit import WorkerPool


class _Sleeper:
    """A real child process standing in for a worker."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.alive:
            self.proc.kill()
        self.proc.wait()


def test_workers_are_reused_replaced_when_dead_and_killed_on_close():
    pool = WorkerPool(_Sleeper, size=2)
    with pool.slot():
        first = pool.take()
        pool.give_back(first)
    with pool.slot():
        assert pool.take() is first  # reused
        first.kill()
        pool.give_back(first)  # dead: not kept
    assert pool.idle_workers() == []
    with pool.slot():
        second = pool.take()
        assert second is not first and second.alive
        pool.give_back(second)
    pool.close()
    assert not second.alive and pool.idle_workers() == []
    with pool.slot():
        third = pool.take()
        pool.give_back(third)  # after close: killed, not kept
    assert not third.alive and pool.idle_workers() == []


def test_fill_starts_every_worker_and_slots_bound_concurrency():
    pool = WorkerPool(_Sleeper, size=2)
    pool.fill()
    workers = pool.idle_workers()
    assert len(workers) == 2 and all(w.alive for w in workers)
    held = [pool.slot().acquire(blocking=False) for _ in range(3)]
    assert held == [True, True, False]
    for _ in range(2):
        pool.slot().release()
    pool.close()
    assert not any(w.alive for w in workers)
