"""The launcher: a run plan -> a Ray Train `TorchTrainer` fit (blocking), nothing else."""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ray
from ray.train import FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchConfig, TorchTrainer

from trainer_svc._control import ControllerEvents
from trainer_svc._spec import RunPlan
from trainer_svc._worker import train_loop_per_worker


def build_trainer(
    run_id: str,
    plan: RunPlan,
    loop_config: dict[str, Any],
    storage_path: str,
    control: Any,
    custom_resources: Mapping[str, float] | None = None,
) -> TorchTrainer:
    """The TorchTrainer of a run: `plan.num_workers` workers (gloo; a GPU each with use_gpu),
    each also reserving `custom_resources` (custom Ray resources of the nodes meant for
    training), restarted from the last checkpoint up to `plan.max_failures` times."""
    resources: dict[str, float] = {**(custom_resources or {}), "CPU": plan.cpus_per_worker}
    if plan.memory_bytes_per_worker:
        resources["memory"] = float(plan.memory_bytes_per_worker)
    if plan.use_gpu:
        resources["GPU"] = 1.0
    return TorchTrainer(
        train_loop_per_worker,
        train_loop_config={**loop_config, "control": control},
        torch_config=TorchConfig(backend="gloo"),
        scaling_config=ScalingConfig(
            num_workers=plan.num_workers, use_gpu=plan.use_gpu, resources_per_worker=resources
        ),
        run_config=RunConfig(
            name=f"autoperi-{run_id}",
            storage_path=str(Path(storage_path).resolve()),
            failure_config=FailureConfig(max_failures=plan.max_failures),
            callbacks=[ControllerEvents(control)],
        ),
    )


def cluster_gpus() -> float:
    """GPUs in the Ray cluster (0 when Ray is not running)."""
    return float(ray.cluster_resources().get("GPU", 0)) if ray.is_initialized() else 0.0


def ensure_ray(address: str | None, num_cpus: int | None, object_store_memory: int) -> None:
    """Connect to `address`, or start a local Ray (no auth token, no usage stats) if none runs."""
    import os

    if ray.is_initialized():
        return
    if address is None:
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        ray.init(
            num_cpus=num_cpus,
            object_store_memory=object_store_memory,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
    else:
        ray.init(address=address, log_to_driver=False, configure_logging=False)
