"""Settings of the scorer service (environment variables AUTOPERI_SCORER_<FIELD>)."""

from pydantic import Field
from svc_kit import ServiceSettings, service_config

from scorer_svc._core import CoreLimits
from scorer_svc._pool import PoolLimits


class ScorerSettings(ServiceSettings):
    """Server settings plus dataset store (novelty), request limits, batching and workers."""

    model_config = service_config("scorer")

    port: int = Field(50063, ge=0, le=65535, description="0 binds a free port (tests)")
    storage_uri: str = Field(
        "autoperi-data", description="dataset store for novelty (directory, file://, s3://)"
    )
    max_batch_size: int = Field(256, gt=0, description="crystals per request")
    max_atoms: int = Field(200, gt=0, description="atoms per crystal (more: per-crystal error)")
    batch_size: int = Field(16, gt=0, description="crystals per CHGNet call (single points)")
    relax_batch_size: int = Field(4, gt=0, description="crystals per worker call when relaxing")
    max_relax_steps: int = Field(2000, gt=0, description="largest max_relax_steps accepted")
    call_timeout_s: float = Field(900.0, gt=0, description="per worker call without deadline")
    workers: int = Field(1, gt=0, description="CHGNet worker processes (~2.2 GB peak each)")
    torch_threads: int = Field(1, gt=0, description="torch threads per worker")
    worker_startup_timeout_s: float = Field(300.0, gt=0, description="to load CHGNet")
    warm_start: bool = Field(True, description="start the workers when the server is built")
    novelty_cache_commits: int = Field(4, gt=0, description="dataset commits kept in memory")
    hull_entries: str = Field(
        "", description="JSON of scored reference crystals (`autoperi score --json`); '': no hull"
    )
    hull_source: str = Field("", description="what the hull reference is, e.g. mp20-train@<id>")

    def pool_limits(self) -> PoolLimits:
        """The worker pool these settings describe."""
        return PoolLimits(self.workers, self.torch_threads, self.worker_startup_timeout_s)

    def core_limits(self) -> CoreLimits:
        """The request limits and batching these settings describe."""
        return CoreLimits(
            max_batch_size=self.max_batch_size,
            max_atoms=self.max_atoms,
            batch_size=self.batch_size,
            relax_batch_size=self.relax_batch_size,
            max_relax_steps=self.max_relax_steps,
            call_timeout_s=self.call_timeout_s,
        )
