"""Settings of the ingest service (environment variables AUTOPERI_INGEST_<FIELD>)."""

from pydantic import Field
from svc_kit import ServiceSettings, service_config

from ingest_svc._sandbox import SandboxLimits
from ingest_svc._session import SessionLimits


class IngestSettings(ServiceSettings):
    """Server settings plus storage location, request limits and parser sandbox limits."""

    model_config = service_config("ingest")

    port: int = Field(50061, ge=0, le=65535, description="0 binds a free port (tests)")
    storage_uri: str = Field(
        "autoperi-data", description="object store URI or directory (file:///..., s3://...)"
    )
    max_records_per_request: int = Field(100_000, gt=0, description="records per Ingest call")
    max_bytes_per_request: int = Field(256 << 20, gt=0, description="text bytes per Ingest call")
    max_rejections_listed: int = Field(1000, ge=0, description="rejected records in a reply")
    commit_margin_s: float = Field(
        1.0,
        ge=0,
        description="an ingest commits only with more than this left of its deadline,"
        " kept for the commit and the reply",
    )
    parse_batch_records: int = Field(200, gt=0, description="records per parser call")
    parse_workers: int = Field(2, gt=0, description="sandboxed parser processes")
    parse_timeout_s: float = Field(20.0, gt=0, description="per parser call, plus per record")
    parse_timeout_per_record_s: float = Field(0.5, ge=0, description="added per record")
    parse_memory_mb: int = Field(2048, gt=64, description="address-space limit per parser")

    def sandbox_limits(self) -> SandboxLimits:
        """The parser sandbox limits these settings describe."""
        return SandboxLimits(
            memory_bytes=self.parse_memory_mb << 20,
            timeout_s=self.parse_timeout_s,
            timeout_per_record_s=self.parse_timeout_per_record_s,
            workers=self.parse_workers,
        )

    def session_limits(self) -> SessionLimits:
        """The per-request limits these settings describe."""
        return SessionLimits(
            max_records=self.max_records_per_request,
            max_bytes=self.max_bytes_per_request,
            batch_records=self.parse_batch_records,
            max_rejections_listed=self.max_rejections_listed,
        )
