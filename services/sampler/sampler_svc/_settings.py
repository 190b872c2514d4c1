"""Settings of the sampler service (environment variables AUTOPERI_SAMPLER_<FIELD>)."""

from pathlib import Path
from typing import Any

from pydantic import Field
from svc_kit import ServiceSettings, service_config


class SamplerSettings(ServiceSettings):
    """Serve ports, the checkpoint, admission limits (backpressure) and the batching knobs.

    `max_ongoing_requests` requests run in the replica (and can be batched together); up to
    `max_queued_requests` more wait in the proxy; beyond that a request gets RESOURCE_EXHAUSTED.
    The batching knobs (`user_config`) can be changed on a running deployment.

    Serve's gRPC proxy serves plaintext only and binds all interfaces. Without TLS settings it
    takes `port`; with them it takes `proxy_port` (keep that port closed to the network) and
    a TLS-terminating relay (`svc_kit.build_relay`) serves `port`.
    """

    model_config = service_config("sampler")

    port: int = Field(50064, ge=1, le=65535, description="gRPC port of the Serve proxy")
    proxy_port: int = Field(
        50164, ge=1, le=65535, description="with TLS on: plaintext port of Serve's gRPC proxy"
    )
    http_port: int = Field(8064, ge=1, le=65535, description="HTTP port of the Serve proxy")
    checkpoint: Path = Field(Path("checkpoints/perov_5_csp"), description="checkpoint directory")
    app_name: str = Field("sampler", description="Serve application name (client metadata)")
    ray_address: str | None = Field(None, description="Ray cluster to join (None: a local one)")
    num_replicas: int = Field(1, ge=1, description="sampler replicas")
    replica_cpus: float = Field(1.0, gt=0, description="CPUs reserved per replica")
    torch_threads: int = Field(1, ge=1, description="torch threads per replica")
    max_ongoing_requests: int = Field(64, ge=1, description="requests a replica holds")
    max_queued_requests: int = Field(64, ge=0, description="requests waiting in the proxy")
    request_timeout_s: float = Field(300.0, gt=0, description="proxy-side limit per request")
    max_batch_atoms: int = Field(2048, ge=100, description="atoms per batched model call")
    batch_wait_timeout_s: float = Field(0.02, ge=0, description="wait to fill a batch")
    max_samples_per_request: int = Field(1024, ge=1, description="largest num_samples")
    chunk_samples: int = Field(32, ge=1, description="samples per chunk (stream granularity)")
    max_atoms: int = Field(100, ge=1, le=100, description="largest cell, in atoms")

    def user_config(self) -> dict[str, Any]:
        """The deployment's reconfigurable knobs."""
        return {
            "max_batch_atoms": self.max_batch_atoms,
            "batch_wait_timeout_s": self.batch_wait_timeout_s,
            "max_samples_per_request": self.max_samples_per_request,
            "chunk_samples": self.chunk_samples,
        }
