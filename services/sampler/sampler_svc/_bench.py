"""`autoperi bench serve`: gRPC sampling throughput through Ray Serve vs the in-process model.

Workload: every request asks for `samples_per_request` CSP samples of one SrTiO3-family
perovskite (SrTiO3, BaTiO3, CaTiO3, KNbO3 in turn; 5 atoms each) at `steps` Euler steps. Closed
loop: each of C clients sends its next request when the previous reply arrives, for
`seconds_per_level`; every request's outcome is counted. The reference of a level is the
in-process Generator sampling the family's cells in batches of C x samples_per_request (the
batch the server can form) with the same torch threads as the replica, measured just before and
just after the level (mean of the two). It runs in a 1-CPU Ray actor, not in the driver,
so that it is scheduled like the replica (Ray starts workers at a raised niceness: nice 19 here
against 10 for the driver; on a shared machine the CPU share differs).
Overload: 4 x the deployment's admission capacity (max_ongoing_requests + max_queued_requests)
of clients, each backing off 20 ms after RESOURCE_EXHAUSTED; expected: only OK and
RESOURCE_EXHAUSTED, every reply counted. All traffic is on loopback.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import platform
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from sampler_svc._settings import SamplerSettings
from sampler_svc.testing import free_port

FAMILY = ("SrTiO3", "BaTiO3", "CaTiO3", "KNbO3")


class Reference:
    """The in-process Generator on `n` cells of the family (run as a 1-CPU Ray actor)."""

    def __init__(self, checkpoint: Path, threads: int, steps: int, n: int) -> None:
        import torch
        from autoperi_model import Generator, parse_composition

        torch.set_num_threads(threads)
        self.gen = Generator.from_checkpoint(checkpoint)
        self.cells = [parse_composition(FAMILY[i % len(FAMILY)]) for i in range(n)]
        self.steps = steps
        self.gen.generate_types(self.cells[:8], steps=2, sampler="euler")  # warm-up

    def measure(self, batch: int) -> float:
        """Crystals/s of Generator.generate_types over the cells in batches of `batch`."""
        start = time.perf_counter()
        self.gen.generate_types(self.cells, self.steps, "euler", seed=0, batch_size=batch)
        return round(len(self.cells) / (time.perf_counter() - start), 2)


class _Load:
    """Closed-loop clients against one address; outcomes and latencies of every request."""

    def __init__(self, address: str, samples: int, steps: int, backoff_s: float = 0.0) -> None:
        self.address, self.samples, self.steps, self.backoff_s = address, samples, steps, backoff_s
        self.outcomes: Counter[str] = Counter()
        self.latencies: list[float] = []
        self.crystals = 0
        self.sent = 0

    async def run(self, clients: int, seconds: float) -> float:
        """Run `clients` loops for `seconds` (then let requests in flight finish); wall time."""
        import grpc

        channels = [grpc.aio.insecure_channel(self.address) for _ in range(1 + clients // 32)]
        stop = time.perf_counter() + seconds
        start = time.perf_counter()
        try:
            await asyncio.gather(
                *(self._client(i, channels[i % len(channels)], stop) for i in range(clients))
            )
        finally:
            for channel in channels:
                await channel.close()
        return time.perf_counter() - start

    async def _client(self, index: int, channel, stop: float) -> None:
        import grpc
        from autoperi.sampler.v1 import sampler_pb2, sampler_pb2_grpc

        from sampler_svc import client

        stub = sampler_pb2_grpc.SamplerServiceStub(channel)
        k = 0
        while time.perf_counter() < stop:
            formula = FAMILY[(index + k) % len(FAMILY)]
            spec = client.csp_spec(formula, self.samples, self.steps, index * 100_003 + k, "euler")
            k += 1
            self.sent += 1
            began = time.perf_counter()
            try:
                reply = await stub.Sample(
                    sampler_pb2.SampleRequest(spec=spec), timeout=120, metadata=client.metadata()
                )
            except grpc.aio.AioRpcError as error:
                self.outcomes[error.code().name] += 1
                if error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                    await asyncio.sleep(self.backoff_s)
                continue
            ok = len(reply.crystals) == self.samples
            self.outcomes["OK" if ok else "SHORT_REPLY"] += 1
            self.crystals += len(reply.crystals)
            self.latencies.append(time.perf_counter() - began)

    def summary(self, clients: int, wall: float) -> dict[str, Any]:
        lat = np.array(self.latencies) * 1000 if self.latencies else np.zeros(1)
        rate = self.crystals / wall
        return {
            "clients": clients,
            "requests": self.sent,
            "answered": sum(self.outcomes.values()),
            "outcomes": dict(self.outcomes),
            "crystals": self.crystals,
            "seconds": round(wall, 2),
            "crystals_per_second": round(rate, 1),
            "p50_ms": round(float(np.percentile(lat, 50)), 1),
            "p99_ms": round(float(np.percentile(lat, 99)), 1),
        }


@dataclasses.dataclass(frozen=True)
class Plan:
    """What the benchmark runs (see the module docstring)."""

    levels: tuple[int, ...] = (8, 32, 64)
    samples_per_request: int = 4
    steps: int = 10
    seconds_per_level: float = 12.0
    overload_seconds: float = 8.0

    @property
    def batches(self) -> list[int]:
        """The in-process reference batch of each level (clients x samples per request)."""
        return [c * self.samples_per_request for c in self.levels]


def bench_serve(
    checkpoint: Path, out: Path, plan: Plan | None = None, settings: SamplerSettings | None = None
) -> dict[str, Any]:
    """Run the benchmark; write out/serve.json and out/serve.md; return the result."""
    plan = plan or Plan()
    settings = settings or SamplerSettings(
        log_level="ERROR", max_ongoing_requests=64, max_queued_requests=32, torch_threads=1
    )
    levels_out, overload, deploy_s = _serve_levels(checkpoint, settings, plan)
    result = {
        "benchmark": "serve",
        "workload": f"{plan.samples_per_request} samples per request of one of "
        f"{', '.join(FAMILY)}, {plan.steps} Euler steps",
        "settings": {k: settings.model_dump()[k] for k in _SETTING_KEYS},
        "deploy_seconds": round(deploy_s, 1),
        "in_process_crystals": max(plan.batches),
        "levels": levels_out,
        "overload": overload,
        "machine": _machine(),
    }
    _write(out, result)
    return result


_SETTING_KEYS = (
    "max_ongoing_requests",
    "max_queued_requests",
    "max_batch_atoms",
    "batch_wait_timeout_s",
    "chunk_samples",
    "torch_threads",
    "replica_cpus",
)


def _serve_levels(checkpoint: Path, settings: SamplerSettings, plan: Plan):
    """On a local Ray: deploy, run each concurrency level between two in-process reference
    measurements, run the overload, shut down."""
    import ray
    from ray import serve

    from sampler_svc._launch import deploy, init_ray

    init_ray(None)
    try:
        t0 = time.perf_counter()
        port = free_port()
        deploy(checkpoint, port, free_port(), settings)
        deploy_s, address = time.perf_counter() - t0, f"127.0.0.1:{port}"
        actor = ray.remote(num_cpus=1)(Reference)
        reference = actor.remote(checkpoint, settings.torch_threads, plan.steps, max(plan.batches))
        out, overload = asyncio.run(_levels(address, settings, plan, reference))
        return out, overload, deploy_s
    finally:
        serve.shutdown()
        ray.shutdown()


async def _levels(address: str, settings: SamplerSettings, plan: Plan, reference):
    """The summaries of each concurrency level and of the overload run (one event loop)."""
    samples, steps = plan.samples_per_request, plan.steps
    await _Load(address, samples, steps).run(8, 2.0)  # warm-up
    out = []
    for clients, batch in zip(plan.levels, plan.batches, strict=True):
        before = await reference.measure.remote(batch)
        load = _Load(address, samples, steps)
        level = load.summary(clients, await load.run(clients, plan.seconds_per_level))
        after = await reference.measure.remote(batch)
        mean = (before + after) / 2
        level.update(
            in_process_batch=batch,
            in_process_before_after=[before, after],
            in_process_crystals_per_second=round(mean, 2),
            fraction_of_in_process=round(level["crystals_per_second"] / mean, 3),
        )
        out.append(level)
    clients = 4 * (settings.max_ongoing_requests + settings.max_queued_requests)
    load = _Load(address, samples, steps, backoff_s=0.02)
    overload = load.summary(clients, await load.run(clients, plan.overload_seconds))
    exhausted = load.outcomes.get("RESOURCE_EXHAUSTED", 0)
    overload["resource_exhausted_rate"] = round(exhausted / max(1, overload["answered"]), 3)
    overload["lost"] = overload["requests"] - overload["answered"]
    return out, overload


def _machine() -> dict[str, Any]:
    import torch

    return {
        "cpu_count": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "torch": torch.__version__,
        "platform": platform.platform(),
    }


def _write(out: Path, result: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "serve.json").write_text(json.dumps(result, indent=2) + "\n")
    o = result["overload"]
    lines = [
        "# Sampler through Ray Serve gRPC vs in-process",
        "",
        f"Workload: {result['workload']}; closed-loop clients on loopback. In-process reference: "
        f"Generator.generate_types on {result['in_process_crystals']} cells of the family in "
        "batches of clients x samples per request, same torch threads, in a 1-CPU Ray actor, "
        "measured just before and just after each level (the mean is used).",
        "",
        "| clients | requests | crystals | crystals/s | in-process crystals/s [before, after] "
        "| gRPC / in-process "
        "| p50 ms | p99 ms | outcomes |",
        "|---|---|---|---|---|---|---|---|---|",
        *map(_level_row, result["levels"]),
        "",
        f"Overload: {o['clients']} clients (4 x (max_ongoing + max_queued)), "
        f"{o['requests']} requests, {o['answered']} answered, lost {o['lost']}; "
        f"outcomes {o['outcomes']}; RESOURCE_EXHAUSTED rate {o['resource_exhausted_rate']:.1%}; "
        f"{o['crystals_per_second']} crystals/s; OK replies p50 {o['p50_ms']} ms, "
        f"p99 {o['p99_ms']} ms.",
        "",
        f"Settings: {result['settings']}; deploy {result['deploy_seconds']} s; "
        f"machine: {result['machine']}.",
        "",
    ]
    (out / "serve.md").write_text("\n".join(lines))


def _level_row(x: dict[str, Any]) -> str:
    return (
        f"| {x['clients']} | {x['requests']} | {x['crystals']} | {x['crystals_per_second']} | "
        f"{x['in_process_crystals_per_second']} {x['in_process_before_after']} "
        f"(batch {x['in_process_batch']}) | "
        f"{x['fraction_of_in_process']:.0%} | {x['p50_ms']} | {x['p99_ms']} | {x['outcomes']} |"
    )
