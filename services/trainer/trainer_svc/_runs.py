"""RunRecord: one run's state machine, fed by worker events; the history StreamMetrics replays.

PENDING -> RUNNING (first worker group starts) -> SUCCEEDED | FAILED | CANCELLING -> CANCELLED;
RUNNING -> RECOVERING (a worker failed) -> RUNNING (restarted from the last checkpoint).
"""

import threading
import time
from typing import Any

from autoperi.common.v1 import common_pb2
from autoperi.training.v1 import training_pb2 as pb
from google.protobuf.timestamp_pb2 import Timestamp

S = pb.RunState
TERMINAL = frozenset({pb.RUN_STATE_SUCCEEDED, pb.RUN_STATE_FAILED, pb.RUN_STATE_CANCELLED})
BEST_METRIC = "val_loss"


def timestamp(seconds: float | None = None) -> Timestamp:
    """A Timestamp of `seconds` since the epoch (default: now)."""
    message = Timestamp()
    message.FromNanoseconds(int((time.time() if seconds is None else seconds) * 1e9))
    return message


class RunRecord:
    """A run's message, event history and live bookkeeping; every method takes `lock`.

    `events` holds (step at the time, event); `worker_pids` maps rank -> pid of the current
    worker group; `resumed_steps` the step each restart resumed from.
    """

    def __init__(self, run: pb.Run, events=(), plan: Any = None) -> None:
        self.run, self.events, self.plan = run, list(events), plan
        self.lock = threading.Condition()
        self.persist_lock = threading.Lock()
        self.worker_pids: dict[int, int] = {}
        self.resumed_steps: list[int] = []
        self.cancel_requested, self.launched, self.control = False, False, None
        self.last_failure = ""  # the latest worker failure the Ray Train controller reported

    @property
    def terminal(self) -> bool:
        return self.run.state in TERMINAL

    def snapshot(self) -> pb.Run:
        with self.lock:
            copy = pb.Run()
            copy.CopyFrom(self.run)
            return copy

    def set_state(self, state: int, message: str = "", error: tuple[str, str] | None = None):
        """Contract: moves the run to `state` (no-op once terminal) and records the change."""
        with self.lock:
            if self.terminal or (self.run.state == state and not message):
                return
            now = timestamp()
            self.run.state = state
            if state == pb.RUN_STATE_RUNNING and not self.run.HasField("started"):
                self.run.started.CopyFrom(now)
            if state in TERMINAL:
                self.run.finished.CopyFrom(now)
            if error is not None:
                self.run.error.CopyFrom(common_pb2.Problem(code=error[0], message=error[1]))
            change = pb.RunStateChange(state=state, time=now, message=message)
            self._append(pb.StreamMetricsResponse(state_change=change))

    def apply(self, event: dict[str, Any]) -> None:
        """Contract: folds one worker event (see RunControl) into the run."""
        handler = getattr(self, f"_on_{event['kind']}", None)
        if handler is not None:
            with self.lock:
                handler(event)

    def _on_attempt(self, event: dict[str, Any]) -> None:
        attempt, step = event["attempt"], event["step"] or 0
        if attempt > 1:
            self.run.num_restarts = attempt - 1
            self.resumed_steps.append(step)
            if self.run.state != pb.RUN_STATE_RECOVERING:
                self.set_state(pb.RUN_STATE_RECOVERING, "a worker failed")
        if self.run.state != pb.RUN_STATE_CANCELLING:
            where = f"resuming from step {step}" if event["step"] is not None else "from step 0"
            self.set_state(pb.RUN_STATE_RUNNING, f"worker group {attempt} started, {where}")

    def _on_failure(self, event: dict[str, Any]) -> None:
        self.last_failure = event["message"]
        restarts_left = self.plan is None or self.run.num_restarts < self.plan.max_failures
        if restarts_left and self.run.state in (pb.RUN_STATE_RUNNING, pb.RUN_STATE_PENDING):
            self.set_state(pb.RUN_STATE_RECOVERING, event["message"])

    def _on_worker(self, event: dict[str, Any]) -> None:
        self.worker_pids[event["rank"]] = event["pid"]

    def _on_metrics(self, event: dict[str, Any]) -> None:
        values = dict(event["values"])
        point = pb.MetricPoint(
            step=event["step"],
            epoch=event["epoch"],
            time=timestamp(event["time"]),
            split="train",
            loss=values.pop("loss", 0.0),
            learning_rate=values.pop("lr", 0.0),
            values=values,
        )
        self.run.step = max(self.run.step, event["step"])
        self.run.latest_metrics.update(event["values"])
        self._append(pb.StreamMetricsResponse(metrics=point), event["step"])

    def _on_checkpoint(self, event: dict[str, Any]) -> None:
        checkpoint = pb.Checkpoint(
            checkpoint_id=event["checkpoint_id"],
            manifest=common_pb2.ObjectRef(**event["manifest"]),
            step=event["step"],
            epoch=event["epoch"],
            metrics=event["metrics"],
            created=timestamp(event["time"]),
        )
        self.run.step = max(self.run.step, event["step"])
        self.run.latest_metrics.update(event["metrics"])
        self.run.latest_checkpoint.CopyFrom(checkpoint)
        if self._better(checkpoint):
            self.run.best_checkpoint.CopyFrom(checkpoint)
        val = {k[4:]: v for k, v in event["metrics"].items() if k.startswith("val_")}
        if val:
            point = pb.MetricPoint(
                step=event["step"],
                epoch=event["epoch"],
                time=checkpoint.created,
                split="val",
                loss=val.pop("loss", 0.0),
                values=val,
            )
            self._append(pb.StreamMetricsResponse(metrics=point), event["step"])
        self._append(pb.StreamMetricsResponse(checkpoint=checkpoint), event["step"])

    def _better(self, checkpoint: pb.Checkpoint) -> bool:
        best = self.run.best_checkpoint
        if not best.checkpoint_id or BEST_METRIC not in checkpoint.metrics:
            return not best.checkpoint_id or BEST_METRIC not in best.metrics
        return checkpoint.metrics[BEST_METRIC] <= best.metrics.get(BEST_METRIC, float("inf"))

    def _append(self, event: pb.StreamMetricsResponse, step: int | None = None) -> None:
        self.events.append((self.run.step if step is None else step, event))
        self.lock.notify_all()

    def wait_events(self, from_step: int, index: int, timeout: float):
        """(events after `index` at step >= from_step, new index, terminal); waits up to
        `timeout` seconds for new events while the run is live."""
        with self.lock:
            if len(self.events) <= index and not self.terminal:
                self.lock.wait(timeout)
            fresh = [
                e
                for s, e in self.events[index:]
                if s >= from_step
                or (e.HasField("state_change") and e.state_change.state in TERMINAL)
            ]
            return fresh, len(self.events), self.terminal
