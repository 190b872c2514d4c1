"""Throughput benchmarks: training (crystals/s per core) and sampling (crystals per second).

Training and SrTiO3 sampling run single-threaded (one core); CSP over a split's compositions
(`bench_cells`) on the threads it is given, against a baseline checkpoint in the same run. All
record the machine's load average, since the numbers depend on what else the machine runs.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import torch

from autoperi_model._config import Config
from autoperi_model._generator import Generator
from autoperi_model._train import TrainingData, _Run


def _machine() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "load_average_1m": os.getloadavg()[0],
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "platform": platform.platform(),
    }


def _write(out: Path, name: str, result: dict[str, Any], headline: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    rows = "\n".join(f"| {k} | {v} |" for k, v in result.items() if not isinstance(v, dict))
    machine = "\n".join(f"| {k} | {v} |" for k, v in result["machine"].items())
    body = f"# {headline}\n\n| quantity | value |\n|---|---|\n{rows}\n{machine}\n"
    (out / f"{name}.md").write_text(body)


def bench_train(
    config_path: Path, data: TrainingData, out: Path, steps: int = 20, warmup: int = 3
) -> dict[str, Any]:
    """Time `steps` optimizer steps (after `warmup`) of the config's model on `data` (its
    training data, read from the featurised shards of its dataset commit)."""
    torch.set_num_threads(1)
    config = Config.from_yaml(config_path).updated(train={"init_from": None})  # speed only
    run = _Run(config, data)
    for _ in range(warmup):
        run.train_step()
    start = time.perf_counter()
    for _ in range(steps):
        run.train_step()
    seconds = time.perf_counter() - start
    crystals = steps * config.train.batch_size
    result = {
        "benchmark": "train",
        "dataset": config.data.dataset,
        "batch_size": config.train.batch_size,
        "steps": steps,
        "seconds": round(seconds, 3),
        "crystals_per_second_per_core": round(crystals / seconds, 2),
        "seconds_per_step": round(seconds / steps, 4),
        "parameters": sum(p.numel() for p in run.model.parameters()),
        "machine": _machine(),
    }
    _write(out, "train", result, "Training throughput (one core)")
    return result


def bench_sample(
    checkpoint: Path,
    out: Path,
    n: int = 256,
    steps: int = 50,
    sampler: str = "euler",
    composition: str = "SrTiO3",
) -> dict[str, Any]:
    """Time sampling `n` crystals of `composition` in one batch (`steps` steps of `sampler`)."""
    torch.set_num_threads(1)
    gen = Generator.from_checkpoint(checkpoint, tasks=("csp",), processes=("flow",))
    gen.generate_csp([composition], 8, steps=2, sampler=sampler)  # warm-up
    start = time.perf_counter()
    crystals = gen.generate_csp([composition], n, steps=steps, sampler=sampler, batch_size=n)
    seconds = time.perf_counter() - start
    result = {
        "benchmark": "sample",
        "checkpoint": gen.checkpoint_id,
        "composition": composition,
        "crystals": n,
        "steps": steps,
        "sampler": sampler,
        "nfe_per_sample": int(crystals[0].properties["nfe"]),
        "seconds": round(seconds, 3),
        "crystals_per_second": round(n / seconds, 2),
        "machine": _machine(),
    }
    _write(out, "sample", result, "Sampling throughput (one core)")
    return result


def bench_cells(
    checkpoint: Path,
    cells: list,
    label: str,
    out: Path,
    baseline: Path | None = None,
    threads: int = 2,
) -> dict[str, Any]:
    """Crystals per second predicting `cells` (atomic-number arrays, e.g. the rows of the split
    `label`) with the checkpoint's own sampler and steps, on `threads` threads; with `baseline`,
    the same cells on that checkpoint too, and the speed ratio checkpoint / baseline."""
    torch.set_num_threads(threads)
    result: dict[str, Any] = {"benchmark": "sample_cells", "cells": label, "crystals": len(cells)}
    result.update(_time_cells(checkpoint, cells))
    if baseline is not None:
        base = _time_cells(baseline, cells)
        result.update({f"baseline_{k}": v for k, v in base.items()})
        result["speed_ratio"] = round(
            result["crystals_per_second"] / base["crystals_per_second"], 2
        )
    result["machine"] = _machine()
    _write(out, "sample_cells", result, f"CSP throughput on {label} ({threads} threads)")
    return result


def _time_cells(checkpoint: Path, cells: list) -> dict[str, Any]:
    gen = Generator.from_checkpoint(checkpoint, tasks=("csp",))
    gen.generate_types(cells[:4])  # warm-up
    start = time.perf_counter()
    crystals = gen.generate_types(cells, indices=[0] * len(cells))
    seconds = time.perf_counter() - start
    nfe = [c.properties.get("nfe", 0.0) for c in crystals]
    return {
        "checkpoint": gen.checkpoint_id,
        "kind": gen.kind,
        "mean_nfe": round(sum(nfe) / len(nfe), 2),
        "seconds": round(seconds, 3),
        "crystals_per_second": round(len(cells) / seconds, 2),
    }
