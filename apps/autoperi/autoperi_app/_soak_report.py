"""soak.md: the soak's result (`_soak.run_soak`) as tables."""

from typing import Any


def markdown(result: dict[str, Any]) -> str:
    """The markdown report of a soak result."""
    p, m = result["plan"], result["machine"]
    lines = [
        "# Sampler soak: mixed unary / stream requests, 10 % bad",
        "",
        f"Checkpoint {result.get('checkpoint', '?')} ({result['checkpoint_id']}); "
        f"{p['requests']} requests from {p['clients']} closed-loop clients (gRPC aio, loopback, "
        f"Serve's proxy), unary Sample and SampleStream in equal shares, "
        f"{p['bad_fraction']:.0%} bad; good: 1-{p['max_samples']} CSP samples of a perovskite, "
        f"{p['steps'] or 'default'} {p['sampler'] or 'default'} steps, a seed per request (the "
        "crystal ids carry it). Verdict: "
        f"**{'passed' if result['passed'] else 'FAILED'}**.",
        "",
        "| requests | replies | lost requests | lost samples | duplicated requests "
        "| duplicated samples | good refused | bad accepted | bad refused otherwise "
        "| requests/s | crystals/s | wall s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
        f"| {result['requests_sent']} | {result['replies']} | {result['lost_requests']} | "
        f"{result['lost_samples']} | {result['duplicated_requests']} | "
        f"{result['duplicated_samples']} | {sum(result['wrongly_refused'].values())} | "
        f"{result['wrongly_accepted']} | {result['wrong_refusals']} | "
        f"{result['requests_per_second']} | {result['crystals_per_second']} | "
        f"{result['wall_seconds']} |",
        "",
        *_latency_lines(result["latency_ms"]),
        "",
        *_bad_lines(result["bad_requests"], result["bad_request_reasons"]),
        "",
        f"Requests by kind {result['kinds']}; samples {result['samples']}; stream progress or "
        f"seed wrong: {result['bad_progress_or_seed']}. Settings: {result.get('settings', {})}; "
        f"deploy {result.get('deploy_seconds', '?')} s; machine: {m['cpu_count']} CPUs, load "
        f"(1 min) {m['load_average_1m_before_after'][0]} before, "
        f"{m['load_average_1m_before_after'][1]} after, niceness {m['niceness']}; "
        f"{m['platform']}.",
        *_problem_lines(result["problems"]),
    ]
    return "\n".join(lines) + "\n"


def _latency_lines(latency: dict[str, dict[str, float]]) -> list[str]:
    rows = [
        f"| {kind} | {x['count']} | {x['p50']} | {x['p99']} | {x['max']} |"
        for kind, x in latency.items()
    ]
    return ["| latency (ms) | requests | p50 | p99 | max |", "|---|---|---|---|---|", *rows]


def _bad_lines(bad: dict[str, dict[str, int]], reasons: dict[str, dict[str, str]]) -> list[str]:
    rows = [
        f"| {name} | {sum(t.values())} | {_cell(t)} | {_cell(reasons[name]['expected'])} | "
        f"{_cell(reasons[name]['got'])} |"
        for name, t in bad.items()
    ]
    return [
        "Bad requests (refused_with_reason: the expected status, the reason in its details):",
        "",
        "| bad request | sent | outcomes | expected | first reply (status: details) |",
        "|---|---|---|---|---|",
        *rows,
    ]


def _cell(value: object) -> str:
    """A value as one markdown table cell (pipes and line breaks escaped, at most 160 chars)."""
    text = str(value).replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= 160 else text[:160] + "..."


def _problem_lines(problems: list[dict[str, Any]]) -> list[str]:
    if not problems:
        return []
    return ["", "## Problems (first 20)", "", *(f"- {p}" for p in problems)]
