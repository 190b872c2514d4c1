"""The soak (`make soak`) at a small size: a real sampler on Ray Serve's gRPC proxy, 200 mixed
requests from 8 clients, 10 % bad; nothing lost or duplicated, every bad request refused with its
reason, the report written."""

from pathlib import Path

import pytest

from autoperi_app._soak import run_soak, soak_settings, write_report
from autoperi_app._soak_requests import Limits, SoakPlan, bad_cases, plan_requests

CHECKPOINT = Path(__file__).resolve().parents[3] / "checkpoints" / "perov_5_csp"


def test_the_request_list_is_seeded_and_mixed():
    plan = SoakPlan(requests=1_000, clients=8, seed=5)
    requests = plan_requests(plan, Limits(max_samples=64, max_atoms=100))
    again = plan_requests(plan, Limits(max_samples=64, max_atoms=100))
    assert [r.spec for r in requests] == [r.spec for r in again]
    assert sum(r.bad is not None for r in requests) == 100
    assert 400 < sum(r.kind == "stream" for r in requests) < 600
    good_seeds = [r.spec.seed for r in requests if r.bad is None]
    assert len(set(good_seeds)) == len(good_seeds) == 900
    assert {r.bad.name for r in requests if r.bad} == {c.name for c in bad_cases(Limits(64, 100))}


@pytest.mark.slow
@pytest.mark.e2e
def test_short_soak_loses_and_duplicates_nothing(ray_session, tmp_path):
    from sampler_svc.testing import serving_sampler

    plan = SoakPlan(requests=200, clients=8)
    with serving_sampler(CHECKPOINT, soak_settings(plan)) as address:
        result = run_soak(address, plan)
    write_report(tmp_path, result)
    assert result["replies"] == 200 and result["unanswered"] == 0
    assert (result["lost_requests"], result["lost_samples"]) == (0, 0), result["problems"]
    assert (result["duplicated_requests"], result["duplicated_samples"]) == (0, 0)
    assert result["wrongly_refused"] == {} and result["wrongly_accepted"] == 0
    assert result["wrong_refusals"] == 0 and result["bad_progress_or_seed"] == 0
    assert all(set(t) == {"refused_with_reason"} for t in result["bad_requests"].values())
    assert sum(sum(t.values()) for t in result["bad_requests"].values()) == 20
    assert result["samples"]["expected"] == result["samples"]["received"] > 0
    assert {"unary_good", "stream_good", "unary_bad", "stream_bad"} <= set(result["latency_ms"])
    assert result["passed"]
    assert "Verdict: **passed**" in (tmp_path / "soak.md").read_text()
