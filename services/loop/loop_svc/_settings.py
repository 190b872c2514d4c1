"""Settings of the loop service (environment variables AUTOPERI_LOOP_<FIELD>)."""

from pydantic import Field
from svc_kit import ServiceSettings, service_config


class LoopSettings(ServiceSettings):
    """Server settings plus the state directory, the object store and the services a loop
    calls (defaults: `autoperi stack`'s ports)."""

    model_config = service_config("loop")

    port: int = Field(50066, ge=0, le=65535, description="0 binds a free port (tests)")
    state_dir: str = Field(
        "autoperi-data/loops", description="loop journals and round files (this service's own)"
    )
    storage_uri: str = Field(
        "autoperi-data", description="object store the trainer writes (checkpoints)"
    )
    ingest_address: str = Field("127.0.0.1:50061", description="ingest host:port")
    scorer_address: str = Field("127.0.0.1:50063", description="scorer host:port")
    sampler_address: str = Field("127.0.0.1:50064", description="sampler host:port")
    trainer_address: str = Field("127.0.0.1:50065", description="trainer host:port")
    max_active_loops: int = Field(4, gt=0, description="loops running at once; more: overload")
