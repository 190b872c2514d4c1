"""`autoperi bench soak`: many mixed requests against a real sampler; none lost or doubled.

`run_soak(address, plan)` drives a running sampler: `plan.clients` closed-loop clients (asyncio
tasks over a few gRPC aio channels) take the requests of `_soak_requests.plan_requests` in order
until none is left; every reply is judged (`_soak_requests.Verdicts`) and timed.
`soak(checkpoint, out, plan)` starts a local Ray, deploys the sampler for `checkpoint` on
Serve's gRPC proxy (admission limits above the clients, so a good request is never refused for
load), runs the soak, shuts down, and writes soak.json and soak.md. "passed" means: every
request answered, no sample lost or duplicated, no good request refused, every bad request
refused with its status and reason.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import time
from collections import deque
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from autoperi_app._soak_requests import (
    STREAM,
    Limits,
    Reply,
    SoakPlan,
    SoakRequest,
    Verdicts,
    plan_requests,
)

CHANNELS = 4  # clients share this many HTTP/2 connections


def soak(checkpoint: Path, out: Path, plan: SoakPlan) -> dict[str, Any]:
    """Deploy the sampler on a local Ray, run the soak, write out/soak.json and out/soak.md."""
    import ray
    from sampler_svc.testing import serving_sampler

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(object_store_memory=300 << 20, include_dashboard=False, log_to_driver=False)
    try:
        settings = soak_settings(plan)
        began = time.perf_counter()
        with serving_sampler(checkpoint, settings) as address:
            deploy_s = time.perf_counter() - began
            result = run_soak(address, plan)
    finally:
        ray.shutdown()
    result.update(checkpoint=str(checkpoint), deploy_seconds=round(deploy_s, 1))
    result["settings"] = {k: getattr(settings, k) for k in _SETTING_KEYS}
    write_report(out, result)
    return result


_SETTING_KEYS = (
    "max_ongoing_requests", "max_queued_requests", "max_samples_per_request", "chunk_samples",
    "max_batch_atoms", "batch_wait_timeout_s", "torch_threads", "replica_cpus",
)  # fmt: skip


def soak_settings(plan: SoakPlan):
    """Sampler settings for the soak: every client's request admitted at once, streams of
    several messages (chunks of 4 samples)."""
    from sampler_svc import SamplerSettings

    return SamplerSettings(
        app_name="sampler",
        max_ongoing_requests=plan.clients,
        max_queued_requests=plan.clients,
        max_samples_per_request=64,
        chunk_samples=4,
        log_level="ERROR",
        torch_threads=1,
    )


def run_soak(address: str, plan: SoakPlan) -> dict[str, Any]:
    """Send the plan's requests to the sampler at `address`; the judged, timed result."""
    from sampler_svc import client

    info = client.sampler_info(address)
    requests = plan_requests(plan, Limits(info.max_samples_per_request, info.max_atoms))
    load_before, began = os.getloadavg()[0], time.perf_counter()
    replies = asyncio.run(_drive(address, requests, plan))
    wall = time.perf_counter() - began
    verdicts = Verdicts()
    for reply in replies:
        verdicts.add(reply)
    result = _summary(plan, replies, verdicts, wall)
    result.update(checkpoint_id=info.checkpoint_id, machine=_machine(load_before))
    return result


async def _drive(address: str, requests: list[SoakRequest], plan: SoakPlan) -> list[Reply]:
    import grpc
    from autoperi.sampler.v1 import sampler_pb2_grpc
    from sampler_svc.client import CHANNEL_OPTIONS

    queue, replies = deque(requests), []
    options = CHANNEL_OPTIONS
    channels = [grpc.aio.insecure_channel(address, options=options) for _ in range(CHANNELS)]
    stubs = [sampler_pb2_grpc.SamplerServiceStub(c) for c in channels]
    try:
        await asyncio.gather(
            *(_client(stubs[i % len(stubs)], queue, replies, plan) for i in range(plan.clients))
        )
    finally:
        for channel in channels:
            await channel.close()
    return replies


async def _client(stub, queue: deque, replies: list[Reply], plan: SoakPlan) -> None:
    """One closed-loop client: the next request as soon as the previous one is answered."""
    while queue:
        request = queue.popleft()
        replies.append(await _send(stub, request, plan.timeout_s))


async def _send(stub, request: SoakRequest, timeout: float) -> Reply:
    """Send one request; its reply (a refusal is a Reply with the status and details)."""
    import grpc

    reply, began = Reply(request), time.perf_counter()
    try:
        if request.kind == STREAM:
            await _stream(stub, request, reply, timeout, began)
        else:
            await _unary(stub, request, reply, timeout)
    except grpc.aio.AioRpcError as error:
        reply.status, reply.details = error.code().name, error.details() or ""
    reply.seconds = time.perf_counter() - began
    return reply


async def _unary(stub, request: SoakRequest, reply: Reply, timeout: float) -> None:
    from autoperi.sampler.v1 import sampler_pb2
    from sampler_svc.client import metadata

    message = sampler_pb2.SampleRequest(spec=request.spec)
    answer = await stub.Sample(message, timeout=timeout, metadata=metadata(timeout=timeout))
    reply.ids, reply.seed = tuple(c.id for c in answer.crystals), answer.seed


async def _stream(stub, request: SoakRequest, reply: Reply, timeout: float, began: float):
    from autoperi.sampler.v1 import sampler_pb2
    from sampler_svc.client import metadata

    message = sampler_pb2.SampleStreamRequest(spec=request.spec)
    call = stub.SampleStream(message, timeout=timeout, metadata=metadata(timeout=timeout))
    async for part in call:  # ids and progress kept as they come, up to any error
        if reply.first_seconds is None:
            reply.first_seconds = time.perf_counter() - began
        reply.ids += tuple(c.id for c in part.crystals)
        reply.progress += ((part.num_done, part.num_total),)
        reply.seed = part.seed


def _summary(plan: SoakPlan, replies: list[Reply], v: Verdicts, wall: float) -> dict[str, Any]:
    c = v.counts
    return {
        "benchmark": "soak",
        "plan": asdict(plan),
        "requests_sent": plan.requests,
        "replies": len(replies),
        "unanswered": plan.requests - len(replies),
        "kinds": {k: c[k] for k in ("unary_good", "stream_good", "unary_bad", "stream_bad")},
        "lost_requests": c["requests_lost"] + plan.requests - len(replies),
        "lost_samples": c["samples_lost"],
        "duplicated_requests": c["requests_duplicated"],
        "duplicated_samples": c["samples_duplicated"],
        "samples": {"expected": c["samples_expected"], "received": c["samples_received"]},
        "wrongly_refused": dict(v.refused_good),
        "wrongly_accepted": c["wrongly_accepted"],
        "wrong_refusals": c["wrong_refusal"],
        "bad_progress_or_seed": c["bad_progress_or_seed"],
        "bad_requests": {name: dict(t) for name, t in sorted(v.bad.items())},
        "bad_request_reasons": dict(sorted(v.reasons.items())),
        "latency_ms": _latencies(replies),
        "wall_seconds": round(wall, 1),
        "requests_per_second": round(len(replies) / wall, 1),
        "crystals_per_second": round(c["samples_received"] / wall, 1),
        "problems": v.examples,
        "passed": _passed(plan, replies, v),
    }


def _passed(plan: SoakPlan, replies: list[Reply], v: Verdicts) -> bool:
    c = v.counts
    wrong = c["requests_lost"] + c["requests_duplicated"] + c["wrongly_accepted"]
    wrong += c["wrong_refusal"] + c["bad_progress_or_seed"] + sum(v.refused_good.values())
    return wrong == 0 and len(replies) == plan.requests


def _latencies(replies: list[Reply]) -> dict[str, dict[str, float]]:
    """p50 / p99 / max in ms of each kind of request (good streams: to the last message, and
    to the first)."""
    groups: dict[str, list[float]] = {}
    for r in replies:
        kind = f"{r.request.kind}_{'bad' if r.request.bad else 'good'}"
        groups.setdefault(kind, []).append(r.seconds)
        if r.first_seconds is not None and not r.request.bad:
            groups.setdefault("stream_good_first_message", []).append(r.first_seconds)
    return {kind: _percentiles(values) for kind, values in sorted(groups.items())}


def _percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.array(seconds) * 1000
    return {
        "count": len(ms),
        "p50": round(float(np.percentile(ms, 50)), 1),
        "p99": round(float(np.percentile(ms, 99)), 1),
        "max": round(float(ms.max()), 1),
    }


def _machine(load_before: float) -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "load_average_1m_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "niceness": os.nice(0),
        "platform": platform.platform(),
    }


def write_report(out: Path, result: dict[str, Any]) -> None:
    """soak.json (the result) and soak.md (its tables)."""
    from autoperi_app._soak_report import markdown

    out.mkdir(parents=True, exist_ok=True)
    (out / "soak.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "soak.md").write_text(markdown(result))
