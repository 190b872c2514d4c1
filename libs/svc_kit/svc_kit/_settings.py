"""Service settings from the environment, one prefix per service (AUTOPERI_<SERVICE>_<FIELD>).

Usage: `class IngestSettings(ServiceSettings): model_config = service_config("ingest")`, then
`IngestSettings()` reads AUTOPERI_INGEST_PORT, AUTOPERI_INGEST_LOG_LEVEL, ... (and keyword
arguments override the environment, which is how tests bind port 0).

Security is off unless configured: `tls_cert_file` + `tls_key_file` serve TLS,
`tls_client_ca_file` also requires client certificates (mutual TLS), `auth_tokens_file` requires
`authorization: Bearer <token>` on every RPC but the health service (svc_kit._security).
"""

from pathlib import Path
from typing import Any, Literal, Self, TypeVar

from pydantic import Field, model_validator
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
    tls_cert_file: Path | None = Field(
        None, description="PEM server certificate (chain); with tls_key_file the port is TLS"
    )
    tls_key_file: Path | None = Field(None, description="PEM private key of tls_cert_file")
    tls_client_ca_file: Path | None = Field(
        None, description="PEM CA bundle: clients must present a certificate it signed (mTLS)"
    )
    auth_tokens_file: Path | None = Field(
        None, description="accepted bearer tokens, one per line: RPCs without one are refused"
    )

    @model_validator(mode="after")
    def _check_tls(self) -> Self:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file are set together or not at all")
        if self.tls_client_ca_file is not None and self.tls_cert_file is None:
            raise ValueError("tls_client_ca_file needs tls_cert_file and tls_key_file (mTLS)")
        return self

    @property
    def tls(self) -> bool:
        """Whether the port serves TLS."""
        return self.tls_cert_file is not None


S = TypeVar("S", bound=ServiceSettings)


def settings_from_options(settings_class: type[S], **options: Any) -> S:
    """`settings_class` built from command-line options: an option left at None is not given,
    so the environment (AUTOPERI_<SERVICE>_*) or the field's default applies to it."""
    return settings_class(**{name: value for name, value in options.items() if value is not None})
