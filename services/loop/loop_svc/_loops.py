"""The loop service's core: loops run by `LoopEngine` in background threads, each kept in its
journal under one state directory (`<state_dir>/<loop id>/journal.json`).

Contract:
- `start(spec, request_id)` creates a loop (its id is `request_id` when that is a valid, unused
  loop id, else a random one) and runs it; the same `request_id` again returns the first loop.
- `resume(loop_id, spec)` runs a failed or cancelled loop again from its journal (a running or
  finished one is returned as it is); `spec`, when given, must equal the loop's.
- `cancel(loop_id, reason)` stops a loop before its next stage; the request is also written
  next to the journal (file `cancel`), so it holds across a restart. Idempotent.
- `resume_running()` (a restarted service) runs every loop whose journal says pending/running.
- `close()` stops the engines before their next stage and leaves their journals running, so
  the next service on the same state directory resumes them; it does not wait.
- Views are `(journal snapshot, cancelling)`: a copy taken at every journal save.
"""

from __future__ import annotations

import base64
import copy
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from svc_kit import InvalidInput, NotFound, TooLarge, shown_value

from loop_svc._clients import LoopClients
from loop_svc._engine import LoopEngine, LoopStopped
from loop_svc._events import describe
from loop_svc._journal import JOURNAL_FILE, TERMINAL, Journal, JournalError
from loop_svc._spec import LoopSpec

log = logging.getLogger("loop_svc.loops")
LOOP_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
CANCEL_FILE = "cancel"
MAX_PAGE = 1000
ClientsFactory = Callable[[LoopSpec, Path], LoopClients]  # (spec, checkpoint cache) -> clients
View = tuple[dict[str, Any], bool]  # (journal snapshot, cancelling)


@dataclass(frozen=True)
class LoopEvent:
    """One change of a loop: its state then, the round that changed (a journal round) and what
    happened."""

    state: str
    cancelling: bool
    round: dict[str, Any] | None
    message: str
    time: float


@dataclass
class _Entry:
    snapshot: dict[str, Any]
    events: list[LoopEvent] = field(default_factory=list)
    cancel_reason: str | None = None
    thread: threading.Thread | None = None


class LoopCore:
    """Loops of one state directory (see the module docstring); thread-safe."""

    def __init__(self, state_dir: Path, make_clients: ClientsFactory, max_active: int = 4):
        self.state_dir, self._make_clients = Path(state_dir), make_clients
        self._max_active, self._closing = max_active, False
        self._changed = threading.Condition()  # guards the entries; notified at every change
        self._loops: dict[str, _Entry] = {}
        self._requests: dict[str, str] = {}  # request_id -> loop id
        for path in sorted(self.state_dir.glob(f"*/{JOURNAL_FILE}")):
            try:
                self._index(Journal.load(path).data)
            except (JournalError, ValueError, KeyError) as exc:
                log.warning("skipping %s: %s", path.parent.name, exc)

    def _index(self, data: dict[str, Any]) -> None:
        self._loops[data["loop_id"]] = _Entry(copy.deepcopy(data))
        if data.get("request_id"):
            self._requests[data["request_id"]] = data["loop_id"]

    # -- requests --------------------------------------------------------------------------

    def known_request(self, request_id: str) -> View | None:
        """The loop a request_id started, if any."""
        with self._changed:
            loop_id = self._requests.get(request_id)
            return self._view(loop_id) if loop_id else None

    def start(self, spec: LoopSpec, request_id: str = "") -> View:
        """Create and run a loop of `spec` (see the module docstring)."""
        if len(request_id) > 128:
            raise InvalidInput("request_id: at most 128 characters")
        with self._changed:
            if request_id in self._requests:
                return self._view(self._requests[request_id])
            self._check_capacity()
            loop_id = request_id if self._free_id(request_id) else uuid.uuid4().hex[:12]
            journal = Journal.open(self.state_dir, loop_id, spec.to_json())
            journal.data["request_id"] = request_id
            journal.save()
            self._index(journal.data)
            self._launch(loop_id, journal)
            return self._view(loop_id)

    def _free_id(self, request_id: str) -> bool:
        """Whether `request_id` can name a new loop (a loop id no loop has)."""
        if not LOOP_ID.match(request_id):
            return False
        return request_id not in self._loops and not (self.state_dir / request_id).exists()

    def resume(self, loop_id: str, spec: LoopSpec | None = None) -> View:
        """Run a failed or cancelled loop again (see the module docstring)."""
        with self._changed:
            entry = self._entry(loop_id)
            if spec is not None and spec.to_json() != entry.snapshot["spec"]:
                raise InvalidInput(
                    f"resume_loop_id: loop {loop_id} was started with another plan (leave the "
                    "other fields empty, or give the same ones)"
                )
            if entry.thread is None and entry.snapshot["state"] != "succeeded":
                self._check_capacity()
                (self.state_dir / loop_id / CANCEL_FILE).unlink(missing_ok=True)
                self._launch(loop_id)
            return self._view(loop_id)

    def resume_running(self) -> list[str]:
        """Run (resume) every loop whose journal is pending or running; their ids."""
        with self._changed:
            ids = [
                i for i, e in self._loops.items() if e.snapshot["state"] in ("pending", "running")
            ]
            for loop_id in ids:
                cancel = self.state_dir / loop_id / CANCEL_FILE
                if cancel.exists():
                    self._record_cancel(self._journal(loop_id), cancel.read_text())
                else:
                    log.info("resuming loop %s from its journal", loop_id)
                    self._launch(loop_id)
            return ids

    def cancel(self, loop_id: str, reason: str) -> View:
        """Ask a loop to stop before its next stage (see the module docstring)."""
        with self._changed:
            entry = self._entry(loop_id)
            if entry.snapshot["state"] in TERMINAL or entry.cancel_reason is not None:
                return self._view(loop_id)
            entry.cancel_reason = reason[:500] or "cancelled by request"
            (self.state_dir / loop_id / CANCEL_FILE).write_text(entry.cancel_reason)
            if entry.thread is None:  # not running here: record it at once
                self._record_cancel(self._journal(loop_id), entry.cancel_reason)
            self._changed.notify_all()
            return self._view(loop_id)

    def get(self, loop_id: str) -> View:
        with self._changed:
            self._entry(loop_id)
            return self._view(loop_id)

    def list(self, page_size: int, page_token: str) -> tuple[list[View], str]:
        """Loops newest first, one page; the next page's token ('' on the last page)."""
        size = min(page_size or 50, MAX_PAGE)
        after = _decode_token(page_token) if page_token else None
        with self._changed:
            keys = sorted(((-e.snapshot["created"], i) for i, e in self._loops.items()))
            if after is not None:
                keys = [k for k in keys if k > after]
            page = [self._view(loop_id) for _, loop_id in keys[:size]]
        token = _encode_token(keys[size - 1]) if len(keys) > size else ""
        return page, token

    def watch(self, loop_id: str) -> tuple[View, int]:
        """The loop's view now and the index of its next event (for `wait_events`)."""
        with self._changed:
            entry = self._entry(loop_id)
            return self._view(loop_id), len(entry.events)

    def wait_events(self, loop_id: str, index: int, timeout: float) -> tuple[list, int, bool]:
        """(events from `index`, the next index, whether the loop has ended), waiting up to
        `timeout` s for an event."""
        with self._changed:
            entry = self._entry(loop_id)
            if len(entry.events) <= index and entry.snapshot["state"] not in TERMINAL:
                self._changed.wait(timeout)
            events = entry.events[index:]
            return events, index + len(events), entry.snapshot["state"] in TERMINAL

    def close(self) -> None:
        """Stop every engine before its next stage, journals left running (see above)."""
        with self._changed:
            self._closing = True
            self._changed.notify_all()

    # -- running ---------------------------------------------------------------------------

    def _check_capacity(self) -> None:
        active = sum(e.thread is not None for e in self._loops.values())
        if active >= self._max_active:
            raise TooLarge(f"{active} loops are running (the most this service runs); retry later")

    def _launch(self, loop_id: str, journal: Journal | None = None) -> None:
        entry = self._loops[loop_id]
        entry.cancel_reason = None
        entry.thread = threading.Thread(
            target=self._run, args=(loop_id, journal), name=f"loop-{loop_id}", daemon=True
        )
        entry.thread.start()

    def _run(self, loop_id: str, journal: Journal | None) -> None:
        """The loop's thread: run the engine to the end, a cancel or a failure."""
        journal = journal or self._journal(loop_id)
        journal.on_save = lambda data: self._saved(loop_id, data)
        spec = LoopSpec.from_json(journal.data["spec"])
        try:
            clients = self._make_clients(spec, journal.directory / "checkpoints")
            LoopEngine(spec, clients, journal, lambda: self._should_stop(loop_id)).run()
        except LoopStopped:
            reason = self._loops[loop_id].cancel_reason
            if reason is not None:
                with self._changed:
                    self._record_cancel(journal, reason)
        except Exception as exc:
            log.exception("loop %s failed", loop_id)
            if journal.data["state"] != "failed":  # e.g. its clients could not be built
                journal.data.update(state="failed", error=f"{type(exc).__name__}: {exc}")
                journal.save()
        finally:
            with self._changed:
                self._loops[loop_id].thread = None
                if journal.data["state"] in TERMINAL:  # a cancel that came too late
                    (journal.directory / CANCEL_FILE).unlink(missing_ok=True)
                self._changed.notify_all()

    def _should_stop(self, loop_id: str) -> bool:
        return self._closing or self._loops[loop_id].cancel_reason is not None

    def _record_cancel(self, journal: Journal, reason: str) -> None:
        journal.on_save = journal.on_save or (lambda data: self._saved(journal.loop_id, data))
        journal.data.update(state="cancelled", error=reason, finished=time.time())
        journal.save()
        (journal.directory / CANCEL_FILE).unlink(missing_ok=True)

    def _saved(self, loop_id: str, data: dict[str, Any]) -> None:
        """A journal save: new snapshot, and an event when something worth telling changed."""
        snapshot = copy.deepcopy(data)
        with self._changed:
            entry = self._loops[loop_id]
            message = describe(entry.snapshot, snapshot)
            entry.snapshot = snapshot
            if message:
                rnd = snapshot["rounds"][-1] if snapshot["rounds"] else None
                cancelling = entry.cancel_reason is not None
                entry.events.append(
                    LoopEvent(snapshot["state"], cancelling, rnd, message, time.time())
                )
            self._changed.notify_all()

    # -- helpers ---------------------------------------------------------------------------

    def _entry(self, loop_id: str) -> _Entry:
        if not loop_id:
            raise InvalidInput("loop_id: required")
        if not LOOP_ID.match(loop_id):
            raise InvalidInput(f"loop_id: {shown_value(loop_id)} is not a loop id")
        if loop_id not in self._loops:
            raise NotFound(f"loop {loop_id} not found")
        return self._loops[loop_id]

    def _journal(self, loop_id: str) -> Journal:
        return Journal.load(self.state_dir / loop_id / JOURNAL_FILE)

    def _view(self, loop_id: str) -> View:
        entry = self._loops[loop_id]
        return entry.snapshot, entry.cancel_reason is not None


def _encode_token(key: tuple[float, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode()


def _decode_token(token: str) -> tuple[float, str]:
    try:
        created, loop_id = json.loads(base64.urlsafe_b64decode(token.encode()))
        return float(created), str(loop_id)
    except (ValueError, TypeError):
        raise InvalidInput("page_token: not a token of this service") from None
