"""Settings of the trainer (environment variables AUTOPERI_TRAINER_<FIELD>)."""

from pydantic import Field
from svc_kit import ServiceSettings, service_config


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
    max_concurrent_runs: int = Field(1, gt=0, description="runs training at once; others queue")
    max_queued_runs: int = Field(32, ge=0, description="PENDING runs beyond this: overload")
    poll_s: float = Field(0.5, gt=0, description="how often a run's worker events are collected")
