"""What decides a round's merge, given the checkpoint before and after fine-tuning:

- `MetricObjective`: the held-out CSP metric improves by `min_improvement` (as before
  objectives existed);
- `YieldObjective`: the S.U.N. yield of fresh samples improves (`_yield.merge_decision`: the
  bootstrap interval of after - before lies above 0, and the CSP guard holds).

`evaluate(before_id, after_id)` returns the round's fields (journal keys, loop.v1.Round names);
`decide(round)` returns (merge?, decision text). The per-checkpoint evaluations come from the
engine's callables, which cache them in the journal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from loop_svc._errors import LoopFailed
from loop_svc._spec import Evaluation
from loop_svc._yield import YieldComparison, bootstrap_interval, from_bits, merge_decision

Metrics = Callable[[str], dict[str, float]]  # checkpoint id -> held-out CSP metrics ({}: no CSP)
Yields = Callable[[str], dict[str, Any]]  # checkpoint id -> yield record (`_yield_eval`)


class MetricObjective:
    """Merge when the held-out metric improves by at least `min_improvement`."""

    def __init__(self, evaluation: Evaluation, metrics: Metrics) -> None:
        self.evaluation, self.metrics = evaluation, metrics

    def evaluate(self, before_id: str, after_id: str) -> dict[str, Any]:
        """metric_before / _after and both checkpoints' metrics; LoopFailed for a checkpoint
        that does not serve CSP (the metric needs CSP samples)."""
        name, before, after = (
            self.evaluation.metric,
            self.metrics(before_id),
            self.metrics(after_id),
        )
        for checkpoint_id, metrics in ((before_id, before), (after_id, after)):
            if name not in metrics:
                raise LoopFailed(
                    f"checkpoint {checkpoint_id[:12]} serves no CSP: the {name} objective needs a"
                    " CSP checkpoint (use the sun_yield objective for de novo checkpoints)"
                )
        return {
            "metric_before": before[name], "metric_after": after[name],
            "evaluation_before": before, "evaluation_after": after,
        }  # fmt: skip

    def decide(self, rnd: dict[str, Any]) -> tuple[bool, str]:
        evaluation = self.evaluation
        before, after = rnd["metric_before"], rnd["metric_after"]
        gain = after - before if evaluation.higher_is_better else before - after
        change = f"{evaluation.metric} {before:.4f} -> {after:.4f} ({gain:+.4f})"
        if not gain >= evaluation.min_improvement:  # NaN (no metric) never merges
            limit = evaluation.min_improvement
            return False, f"not merged: {change} is below min_improvement {limit:g}"
        return True, f"merged: {change}"


class YieldObjective:
    """Merge when the S.U.N. yield improves and the CSP guard holds (see `_yield`)."""

    def __init__(self, evaluation: Evaluation, metrics: Metrics, yields: Yields, seed: int):
        self.evaluation, self.metrics, self.yields, self.seed = evaluation, metrics, yields, seed

    def evaluate(self, before_id: str, after_id: str) -> dict[str, Any]:
        """Both yields, the bootstrap interval of their difference (seeded by the loop's seed),
        the S.U.N. counts and the CSP match rates of the guard (None: no CSP)."""
        before, after = self.yields(before_id), self.yields(after_id)
        evaluation = self.evaluation
        low, high = bootstrap_interval(
            from_bits(before["sun"]), from_bits(after["sun"]),
            evaluation.bootstrap_resamples, evaluation.confidence, self.seed,
        )  # fmt: skip
        csp_before, csp_after = self.metrics(before_id), self.metrics(after_id)
        return {
            "yield_before": before["yield"], "yield_after": after["yield"],
            "yield_diff_low": low, "yield_diff_high": high,
            "num_sun_before": before["num_sun"], "num_sun": after["num_sun"],
            "metric_before": csp_before.get("match_rate"),
            "metric_after": csp_after.get("match_rate"),
            "evaluation_before": csp_before, "evaluation_after": csp_after,
        }  # fmt: skip

    def decide(self, rnd: dict[str, Any]) -> tuple[bool, str]:
        comparison = YieldComparison(
            rnd["yield_before"], rnd["yield_after"], rnd["yield_diff_low"],
            rnd["yield_diff_high"], self.evaluation.confidence, rnd["metric_before"],
            rnd["metric_after"],
        )  # fmt: skip
        return merge_decision(comparison, self.evaluation.max_csp_drop)
