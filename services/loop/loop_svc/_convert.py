"""loop.v1 messages <-> the loop's domain: a `LoopSpec` as a StartLoopRequest, and the journal
as Loop / Round messages (what StartLoop, GetLoop and StreamLoopEvents return). The other way,
StartLoopRequest -> LoopSpec with its validation, is `_request`."""

from __future__ import annotations

import time
from typing import Any

from autoperi.common.v1 import common_pb2
from autoperi.loop.v1 import loop_pb2 as pb
from autoperi.sampler.v1 import sampler_pb2
from google.protobuf.timestamp_pb2 import Timestamp
from svc_kit import public_text

from loop_svc._spec import ChemicalSpace, Evaluation, LoopSpec

_STATES = {
    "pending": pb.LOOP_STATE_PENDING,
    "running": pb.LOOP_STATE_RUNNING,
    "succeeded": pb.LOOP_STATE_SUCCEEDED,
    "failed": pb.LOOP_STATE_FAILED,
    "cancelled": pb.LOOP_STATE_CANCELLED,
}
_COPIED = (
    "branch", "ingest_commit_id", "training_run_id", "checkpoint_id", "num_generated",
    "num_scored", "num_valid", "num_novel", "num_selected", "merged", "merge_commit_id",
    "decision",
)  # fmt: skip
_OPTIONAL = (
    "metric_before", "metric_after", "yield_before", "yield_after", "yield_diff_low",
    "yield_diff_high",
)  # fmt: skip
_OBJECTIVES = {
    "metric": pb.EVALUATION_OBJECTIVE_METRIC,
    "sun_yield": pb.EVALUATION_OBJECTIVE_SUN_YIELD,
}


def _time(seconds: float | None) -> Timestamp | None:
    if seconds is None:
        return None
    stamp = Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


def loop_state(journal: dict[str, Any], cancelling: bool = False) -> int:
    """The LoopState of a journal; a running loop asked to stop is CANCELLING."""
    if cancelling and journal["state"] in ("pending", "running"):
        return pb.LOOP_STATE_CANCELLING
    return _STATES[journal["state"]]


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
    for name in _OPTIONAL:
        if rnd.get(name) is not None:
            setattr(message, name, rnd[name])
    message.num_sun = rnd.get("num_sun", 0)
    return message


def loop_to_proto(journal: dict[str, Any], cancelling: bool = False) -> pb.Loop:
    """The journal's loop: its spec (held-out ref resolved to a commit), state, rounds,
    checkpoints, times, error (a failure's reason, or why it was cancelled)."""
    message = pb.Loop(
        loop_id=journal["loop_id"],
        spec=spec_to_request(LoopSpec.from_json(journal["spec"])),
        state=loop_state(journal, cancelling),
        rounds=[round_to_proto(r) for r in journal["rounds"]],
        current_checkpoint_id=journal["current_checkpoint_id"],
        created=_time(journal["created"]),
        finished=_time(journal.get("finished")),
    )
    message.spec.request_id = journal.get("request_id", "")
    if journal.get("error"):
        code = "loop_cancelled" if journal["state"] == "cancelled" else "loop_failed"
        problem = common_pb2.Problem(code=code, message=public_text(journal["error"], 1000))
        message.error.CopyFrom(problem)
    return message


def spec_to_request(spec: LoopSpec) -> pb.StartLoopRequest:
    """The StartLoopRequest of a spec whose base checkpoint is an id (`_request.request_to_spec`
    gives the spec back)."""
    tune, selection = spec.fine_tune, spec.selection
    request = pb.StartLoopRequest(
        name=spec.name,
        dataset=common_pb2.DatasetRef(dataset=spec.dataset, ref=spec.branch),
        base_checkpoint_id=spec.base_checkpoint,
        num_rounds=spec.num_rounds,
        candidates=[_candidate(spec, target) for target in spec.targets],
        selection=pb.SelectionCriteria(
            require_valid=selection.require_valid,
            require_novel=selection.require_novel,
            max_e_above_hull=selection.max_e_above_hull,
            max_selected=selection.max_selected,
            min_fingerprint_distance=selection.min_fingerprint_distance,
        ),
        fine_tune=pb.FineTuneSpec(
            config_yaml=tune.config_yaml,
            max_steps=tune.max_steps,
            num_workers=tune.num_workers,
            batch_size=tune.batch_size,
            learning_rate=tune.learning_rate,
            ema_decay=tune.ema_decay,
        ),
        evaluation=_evaluation(spec.evaluation),
        sample_current_checkpoint=spec.sample_in_process,
    )
    space = spec.chemical_space
    if space is not None:
        request.chemical_space.CopyFrom(_chemical_space(spec, space))
    return request


def _chemical_space(spec: LoopSpec, space: ChemicalSpace) -> pb.ChemicalSpace:
    return pb.ChemicalSpace(
        allowed_elements=space.elements, required_elements=space.required,
        num_samples=spec.samples_per_target, min_atoms=space.min_atoms,
        max_atoms=space.max_atoms, steps=spec.sample_steps, seed=spec.seed,
    )  # fmt: skip


def _evaluation(evaluation: Evaluation) -> pb.EvaluationSpec:
    return pb.EvaluationSpec(
        dataset=common_pb2.DatasetRef(dataset=evaluation.dataset, ref=evaluation.ref),
        metric=evaluation.metric,
        higher_is_better=evaluation.higher_is_better,
        min_improvement=evaluation.min_improvement,
        max_crystals=evaluation.size,
        num_steps=evaluation.steps,
        objective=_OBJECTIVES[evaluation.objective],
        yield_samples=evaluation.yield_samples,
        stable_e_above_hull=evaluation.stable_e_above_hull,
        bootstrap_resamples=evaluation.bootstrap_resamples,
        confidence=evaluation.confidence,
        max_csp_drop=evaluation.max_csp_drop,
    )


def _candidate(spec: LoopSpec, target: str) -> sampler_pb2.SampleSpec:
    from sampler_svc.client import composition_proto

    task = sampler_pb2.CspTask(composition=composition_proto(target))
    return sampler_pb2.SampleSpec(
        csp=task, num_samples=spec.samples_per_target, seed=spec.seed, num_steps=spec.sample_steps
    )


def event_to_proto(
    state: str, cancelling: bool, rnd: dict[str, Any] | None, message: str, seconds: float
) -> pb.StreamLoopEventsResponse:
    """One StreamLoopEvents message: the loop's state then, the round that changed, what
    happened (text from the journal, paths withheld)."""
    reply = pb.StreamLoopEventsResponse(
        state=loop_state({"state": state}, cancelling),
        message=public_text(message, 1000),
        time=_time(seconds),
    )
    if rnd is not None:
        reply.round.CopyFrom(round_to_proto(rnd))
    return reply


def current_event(journal: dict[str, Any], cancelling: bool) -> pb.StreamLoopEventsResponse:
    """The first StreamLoopEvents message: where the loop is now."""
    rnd = journal["rounds"][-1] if journal["rounds"] else None
    where = f"; round {rnd['index']}: {rnd['stage']}" if rnd else ""
    state = "cancelling" if loop_state(journal, cancelling) == pb.LOOP_STATE_CANCELLING else None
    message = f"loop {journal['loop_id']} {state or journal['state']}{where}"
    return event_to_proto(journal["state"], cancelling, rnd, message, time.time())
