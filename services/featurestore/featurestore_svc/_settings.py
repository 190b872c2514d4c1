"""Settings of the featurestore (environment variables AUTOPERI_FEATURESTORE_<FIELD>)."""

from pathlib import Path

from pydantic import Field
from svc_kit import ServiceSettings, service_config


class FeatureStoreSettings(ServiceSettings):
    """Server settings plus storage location and build limits."""

    model_config = service_config("featurestore")

    port: int = Field(50062, ge=0, le=65535, description="0 binds a free port (tests)")
    storage_uri: str = Field(
        "autoperi-data", description="object store URI or directory (file:///..., s3://...)"
    )
    versions_uri: str = Field(
        "", description="dataset version store (lakefs://..., a directory, s3://); '': storage_uri"
    )
    max_concurrent_builds: int = Field(1, gt=0, description="feature units built at once")
    build_lease_s: float = Field(1800.0, gt=0, description="a builder's lease on a unit")
    energy_cache_dir: Path | None = Field(
        None, description="disk cache of reference-energy builds (CHGNet); None: in memory"
    )
