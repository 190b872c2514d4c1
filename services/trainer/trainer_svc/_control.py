"""RunControl: the Ray actor between a run's workers and the service.

Workers push events (attempt started, metrics, worker pid) and poll the cancel flag; the Ray Train
controller pushes registered checkpoints and failures (ControllerEvents); the service drains the
events and sets the flag. One actor per run, owned by the service process.
"""

import time
from typing import Any

import ray
from ray.train import UserCallback
from svc_kit import public_text


@ray.remote(num_cpus=0)
class RunControl:
    """Event queue and cancel flag of one run (methods are called remotely)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.cancelled = False
        self.attempts = 0

    def push(self, event: dict[str, Any]) -> None:
        self.events.append({**event, "time": event.get("time", time.time())})

    def attempt(self, resumed_step: int) -> int:
        """Rank 0 of a (re)started worker group checks in; returns the attempt number (1, 2...)."""
        self.attempts += 1
        self.push({"kind": "attempt", "attempt": self.attempts, "step": resumed_step})
        return self.attempts

    def drain(self) -> list[dict[str, Any]]:
        events, self.events = self.events, []
        return events

    def cancel(self) -> None:
        self.cancelled = True

    def is_cancelled(self) -> bool:
        return self.cancelled


EVENT_KEY = "autoperi_event"  # key of the service event in rank 0's reported metrics


class ControllerEvents(UserCallback):
    """Ray Train controller callback: forwards what only the controller knows to the service.

    A checkpoint is announced once the controller has registered it (`after_report`), so every
    checkpoint the service shows is one a restarted worker group gets from `get_checkpoint()`;
    a worker exception puts the run in RECOVERING.
    """

    def __init__(self, control: Any) -> None:
        self.control = control

    def after_report(self, run_context, metrics, checkpoint) -> None:
        event = metrics[0].get(EVENT_KEY) if metrics else None
        if event is not None and checkpoint is not None:
            self.control.push.remote(event)

    def after_exception(self, run_context, worker_exceptions) -> None:
        ranks = ", ".join(str(r) for r in sorted(worker_exceptions))
        first = next(iter(worker_exceptions.values()), None)
        reason = public_text(str(first), 200) if first is not None else "unknown"
        self.control.push.remote(
            {"kind": "failure", "message": f"worker(s) {ranks} failed: {reason}"}
        )
