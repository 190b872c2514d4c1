"""The journal as loop.v1 messages (what GetLoop / StreamLoopEvents return)."""

from __future__ import annotations

from typing import Any

from autoperi.common.v1 import common_pb2
from autoperi.loop.v1 import loop_pb2 as pb
from google.protobuf.timestamp_pb2 import Timestamp

_STATES = {
    "pending": pb.LOOP_STATE_PENDING,
    "running": pb.LOOP_STATE_RUNNING,
    "succeeded": pb.LOOP_STATE_SUCCEEDED,
    "failed": pb.LOOP_STATE_FAILED,
}
_COPIED = (
    "branch", "ingest_commit_id", "training_run_id", "checkpoint_id", "num_generated",
    "num_scored", "num_valid", "num_novel", "num_selected", "merged", "merge_commit_id",
    "decision",
)  # fmt: skip


def _time(seconds: float | None) -> Timestamp | None:
    if seconds is None:
        return None
    stamp = Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


def round_to_proto(rnd: dict[str, Any]) -> pb.Round:
    """One journal round as a Round (stage 'pending' -> UNSPECIFIED, 'done' -> DONE)."""
    stage = rnd["stage"]
    message = pb.Round(
        index=rnd["index"],
        stage=pb.RoundStage.Value(f"ROUND_STAGE_{stage.upper()}")
        if stage != "pending"
        else pb.ROUND_STAGE_UNSPECIFIED,
        **{k: rnd[k] for k in _COPIED if k in rnd},
        started=_time(rnd.get("started")),
        finished=_time(rnd.get("finished")),
    )
    for name in ("metric_before", "metric_after"):
        if rnd.get(name) is not None:
            setattr(message, name, rnd[name])
    return message


def loop_to_proto(journal: dict[str, Any]) -> pb.Loop:
    """The journal's loop: state, rounds, checkpoints, times, error (spec: name, dataset, base
    checkpoint, rounds)."""
    spec = journal["spec"]
    message = pb.Loop(
        loop_id=journal["loop_id"],
        spec=pb.StartLoopRequest(
            name=spec["name"],
            dataset=common_pb2.DatasetRef(dataset=spec["dataset"], ref=spec["branch"]),
            base_checkpoint_id=journal["base_checkpoint_id"],
            num_rounds=spec["num_rounds"],
        ),
        state=_STATES[journal["state"]],
        rounds=[round_to_proto(r) for r in journal["rounds"]],
        current_checkpoint_id=journal["current_checkpoint_id"],
        created=_time(journal["created"]),
        finished=_time(journal.get("finished")),
    )
    if journal.get("error"):
        message.error.CopyFrom(common_pb2.Problem(code="loop_failed", message=journal["error"]))
    return message
