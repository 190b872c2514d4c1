"""What changed between two saves of a loop's journal, in one sentence (StreamLoopEvents'
`message`), e.g. "round 1: selected 3 of 6 candidates; next: ingesting"."""

from __future__ import annotations

from typing import Any

Journal = dict[str, Any]


def describe(before: Journal | None, after: Journal) -> str | None:
    """The event between two journal snapshots; None when nothing a follower cares about
    changed (e.g. a checkpoint evaluated)."""
    if before is None or before["state"] != after["state"]:
        return _state(after)
    if not after["rounds"]:
        return None
    rnd = after["rounds"][-1]
    old = before["rounds"][rnd["index"] - 1] if len(before["rounds"]) >= rnd["index"] else None
    done = rnd["done"][len(old["done"]) :] if old else rnd["done"]
    parts = [_finished(stage, rnd) for stage in done]
    if old is None or old["stage"] != rnd["stage"]:
        parts.append("finished" if rnd["stage"] == "done" else f"next: {rnd['stage']}")
    elif rnd.get("training_run_id") and not old.get("training_run_id"):
        parts.append(f"training run {rnd['training_run_id']} started")
    return f"round {rnd['index']}: " + "; ".join(parts) if parts else None


def _state(journal: Journal) -> str:
    state, error = journal["state"], journal.get("error", "")
    return f"loop {journal['loop_id']} {state}" + (f": {error}" if error else "")


def _finished(stage: str, rnd: dict[str, Any]) -> str:
    """What a finished stage produced."""
    if stage == "sampling":
        return f"sampled {rnd.get('num_generated', 0)} candidates"
    if stage == "scoring":
        return (
            f"scored {rnd.get('num_scored', 0)} ({rnd.get('num_valid', 0)} valid, "
            f"{rnd.get('num_novel', 0)} novel)"
        )
    if stage == "selecting":
        return f"selected {rnd.get('num_selected', 0)} of {rnd.get('num_generated', 0)} candidates"
    if stage == "ingesting":
        return (
            f"ingested {rnd.get('num_ingested', 0)} on {rnd['branch']} "
            f"({rnd.get('num_duplicates', 0)} duplicates)"
        )
    if stage == "training":
        checkpoint = rnd.get("checkpoint_id") or "none"
        return f"trained: checkpoint {checkpoint[:12]}"
    if stage == "evaluating" and rnd.get("yield_before") is not None:
        before, after = rnd["yield_before"], rnd["yield_after"]
        return f"evaluated: S.U.N. yield {before:.1f} -> {after:.1f} per 1000"
    if stage == "evaluating":
        before, after = rnd.get("metric_before"), rnd.get("metric_after")
        return "evaluated" if before is None else f"evaluated: {before:.4f} -> {after:.4f}"
    return rnd.get("decision", stage)
