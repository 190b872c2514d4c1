"""A pool of sandboxed parser processes with memory and time limits.

Each worker runs `ingest_svc._worker` in the sandbox of `ingest_svc._isolation`: an empty
environment, a scratch directory of its own (cwd, HOME and TMPDIR, removed when it ends), no
network, no child processes, RLIMIT_AS (address space) and no core files, one BLAS thread.
A batch that does not come back within its time limit, or whose worker dies (a crash, a memory
blow-up), is split in halves and retried in fresh workers down to single records, so one hostile
record costs only itself: it is reported with the code "timeout" or "parser_crash", and the
service process never runs the parser itself.
"""

import logging
import queue
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from typing import Any

from svc_kit import WorkerPool

from ingest_svc._isolation import WORKER_MODULE, sandbox_command, sandbox_env
from ingest_svc._worker import read_frame, write_frame

log = logging.getLogger("ingest_svc.sandbox")


@dataclass(frozen=True)
class SandboxLimits:
    """memory_bytes: address-space limit per worker; timeout_s: per batch, plus
    timeout_per_record_s for each record in it; startup_timeout_s: for a new worker to import
    its libraries (not counted in a batch's time); workers: processes in the pool."""

    memory_bytes: int = 2 << 30
    timeout_s: float = 20.0
    timeout_per_record_s: float = 0.5
    startup_timeout_s: float = 120.0
    workers: int = 2


class WorkerFailed(Exception):
    """The worker timed out or died; `code` is "timeout" or "parser_crash"."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class _Worker:
    """One parser process; `call` sends a batch and waits for the reply within a deadline."""

    def __init__(self, limits: SandboxLimits, module: str = WORKER_MODULE) -> None:
        """Start `module` (the parser; tests may run a probe speaking its protocol) in a fresh
        scratch directory and wait for its ready frame."""
        self.scratch = tempfile.mkdtemp(prefix="ingest-parser-")
        try:
            self.proc = subprocess.Popen(
                sandbox_command(limits.memory_bytes, self.scratch, module),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=sandbox_env(self.scratch),
                cwd=self.scratch,
            )
        except BaseException:
            shutil.rmtree(self.scratch, ignore_errors=True)
            raise
        try:
            self._exchange(None, limits.startup_timeout_s)
        except WorkerFailed as exc:
            raise WorkerFailed("parser_crash", f"the parser process did not start: {exc}") from None

    def call(self, request: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        """The worker's reply to `request` within `timeout_s` seconds, else WorkerFailed."""
        return self._exchange(request, timeout_s)

    def _exchange(self, request: dict[str, Any] | None, timeout_s: float) -> dict[str, Any]:
        """Send `request` (None: only read, e.g. the ready frame) and wait for the reply."""
        replies: queue.Queue = queue.Queue(maxsize=1)

        def exchange() -> None:
            try:
                if request is not None:
                    write_frame(self.proc.stdin, request)
                replies.put(read_frame(self.proc.stdout))
            except (OSError, ValueError) as exc:
                replies.put(exc)

        threading.Thread(target=exchange, daemon=True).start()
        try:
            reply = replies.get(timeout=timeout_s)
        except queue.Empty:
            self.kill()
            raise WorkerFailed("timeout", f"the parser took longer than {timeout_s:.0f}s") from None
        if not isinstance(reply, dict):
            self.kill()
            status = self.proc.wait()
            raise WorkerFailed("parser_crash", f"the parser process died (exit status {status})")
        return reply

    def kill(self) -> None:
        """Kill the process and remove its scratch directory. Its pipes are left to the exchange
        thread, which sees EOF or a broken pipe once the process is gone (closing them under it
        would deadlock)."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.scratch, ignore_errors=True)

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None


class ParserPool:
    """Thread-safe pool of sandboxed parser workers, started lazily and replaced when they die."""

    def __init__(self, limits: SandboxLimits | None = None) -> None:
        self.limits = limits or SandboxLimits()
        self._workers = WorkerPool(lambda: _Worker(self.limits), self.limits.workers)

    def parse(self, request: dict[str, Any], num_records: int) -> list[dict[str, Any]]:
        """Reply entries for one batch (see `ingest_svc._worker`); a batch whose worker fails is
        bisected; a single record that still fails gets an entry with the failure as its error."""
        try:
            return self._call(request, num_records)["records"]
        except WorkerFailed as exc:
            halves = _split(request)
            if halves is None:
                return [_failed_entry(request, exc)]
            log.warning("parser %s on a batch of %d records, bisecting", exc.code, num_records)
            return [entry for half, n in halves for entry in self.parse(half, n)]

    def _call(self, request: dict[str, Any], num_records: int) -> dict[str, Any]:
        timeout = self.limits.timeout_s + self.limits.timeout_per_record_s * num_records
        with self._workers.slot():
            worker = self._workers.take()
            try:
                return worker.call(request, timeout)
            finally:
                self._workers.give_back(worker)

    def close(self) -> None:
        """Stop every idle worker (workers in use stop when their batch returns)."""
        self._workers.close()


def _split(request: dict[str, Any]) -> list[tuple[dict[str, Any], int]] | None:
    """The request's records in two halves, or None for a single record."""
    units = request["units"]
    if len(units) < 2:
        return None
    mid = len(units) // 2
    return [
        (_subrequest(request, units[:mid], request["first_index"]), mid),
        (_subrequest(request, units[mid:], request["first_index"] + mid), len(units) - mid),
    ]


def _subrequest(request: dict[str, Any], units: list[Any], first_index: int) -> dict[str, Any]:
    sub = dict(request, units=units, first_index=first_index)
    if request["kind"] == "proto":
        sub["crystals"] = units
    else:
        sub["text"] = request["header"] + "".join(units)
    return sub


def _failed_entry(request: dict[str, Any], exc: WorkerFailed) -> dict[str, Any]:
    return {
        "index": request["first_index"],
        "key": request.get("unit_keys", [""])[0] if request.get("unit_keys") else "",
        "error": f"{exc.code}: {exc}",
        "hash": None,
        "crystal": None,
    }
