"""Service settings from the environment, one prefix per service (AUTOPERI_<SERVICE>_<FIELD>).

Usage: `class IngestSettings(ServiceSettings): model_config = service_config("ingest")`, then
`IngestSettings()` reads AUTOPERI_INGEST_PORT, AUTOPERI_INGEST_LOG_LEVEL, ... (and keyword
arguments override the environment, which is how tests bind port 0).
"""

from typing import Any, Literal, TypeVar

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def service_config(service: str) -> SettingsConfigDict:
    """Settings config reading variables prefixed AUTOPERI_<SERVICE>_ (case-insensitive)."""
    return SettingsConfigDict(
        env_prefix=f"AUTOPERI_{service.upper()}_", extra="ignore", frozen=True
    )


class ServiceSettings(BaseSettings):
    """What every gRPC service needs to start; subclass to add service-specific fields."""

    model_config = service_config("service")

    host: str = Field("[::]", description="address to bind ('[::]' = all interfaces)")
    port: int = Field(50051, ge=0, le=65535, description="0 binds a free port (tests)")
    max_message_bytes: int = Field(64 << 20, gt=0, description="max request/response size")
    max_concurrent_rpcs: int | None = Field(
        64, gt=0, description="RPCs in flight beyond this get RESOURCE_EXHAUSTED (None: no cap)"
    )
    grace_period_s: float = Field(10.0, ge=0, description="in-flight RPCs get this on shutdown")
    shutdown_delay_s: float = Field(
        0.0, ge=0, description="report NOT_SERVING this long before refusing new RPCs"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool = Field(True, description="JSON log lines (False: plain text)")
    reflection: bool = Field(False, description="serve grpc reflection (debugging tools)")


S = TypeVar("S", bound=ServiceSettings)


def settings_from_options(settings_class: type[S], **options: Any) -> S:
    """`settings_class` built from command-line options: an option left at None is not given,
    so the environment (AUTOPERI_<SERVICE>_*) or the field's default applies to it."""
    return settings_class(**{name: value for name, value in options.items() if value is not None})
