"""Settings of the trainer (environment variables AUTOPERI_TRAINER_<FIELD>)."""

import json

from pydantic import Field, field_validator
from svc_kit import ServiceSettings, service_config

_REQUEST_RESOURCES = ("CPU", "GPU", "memory")  # set per run in StartRunRequest.resources


class TrainerSettings(ServiceSettings):
    """Server settings plus storage, featurestore, Ray and run limits."""

    model_config = service_config("trainer")

    port: int = Field(50065, ge=0, le=65535, description="0 binds a free port (tests)")
    storage_uri: str = Field(
        "autoperi-data", description="object store URI or directory (runs, checkpoints, shards)"
    )
    featurestore_address: str = Field(
        "127.0.0.1:50062", description="featurestore host:port (asked for shards when none given)"
    )
    featurizer_params_json: str = Field("{}", description="featuriser parameters for those shards")
    ray_address: str | None = Field(None, description="Ray cluster address; None: a local Ray")
    ray_num_cpus: int | None = Field(None, gt=0, description="CPUs of the local Ray")
    ray_object_store_memory: int = Field(300 << 20, gt=0, description="local Ray object store")
    ray_storage_path: str = Field(
        "autoperi-data/ray-train", description="Ray Train storage path (shared on a cluster)"
    )
    worker_resources_json: str = Field(
        "{}",
        description='custom Ray resources every training worker reserves, JSON (e.g. {"train": 1}:'
        " workers run only on nodes that offer them)",
    )
    max_concurrent_runs: int = Field(1, gt=0, description="runs training at once; others queue")
    max_queued_runs: int = Field(32, ge=0, description="PENDING runs beyond this: overload")
    poll_s: float = Field(0.5, gt=0, description="how often a run's worker events are collected")

    @field_validator("worker_resources_json")
    @classmethod
    def _check_worker_resources(cls, value: str) -> str:
        try:
            resources = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not JSON: {exc.msg}") from None
        if not isinstance(resources, dict):
            raise ValueError('a JSON object of resource name -> amount, e.g. {"train": 1}')
        for name, amount in resources.items():
            if name in _REQUEST_RESOURCES:
                raise ValueError(f"{name} is set per run (StartRunRequest.resources)")
            if isinstance(amount, bool) or not isinstance(amount, int | float) or amount < 0:
                raise ValueError(f"resource {name!r}: the amount must be a number >= 0")
        return value

    def worker_resources(self) -> dict[str, float]:
        """The custom Ray resources each training worker reserves (resource name -> amount)."""
        return {
            name: float(amount) for name, amount in json.loads(self.worker_resources_json).items()
        }
