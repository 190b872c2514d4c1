"""The sampler as a Serve application builder, for Serve config files: `serve run` / `serve
deploy` and a KubeRay RayService's `serveConfigV2` (`import_path: sampler_svc.app:build`).

`args` are SamplerSettings fields (checkpoint, max_atoms, torch_threads, num_replicas,
replica_cpus, the admission limits and batching knobs); fields not given come from the
AUTOPERI_SAMPLER_* variables of the process that builds the app, or their defaults; an unknown
name is refused. What Serve owns stays in the config file: the gRPC proxy (`grpc_options` with
`SERVICER_FUNCTIONS`) and any per-deployment override (e.g. `max_replicas_per_node`).

TLS settings are refused here: Serve's proxy binds plaintext only and, unlike `autoperi serve
sampler`, a Serve config has no TLS relay in front of it; terminate TLS at the ingress.
"""

from typing import Any

from sampler_svc._launch import build_app
from sampler_svc._settings import SamplerSettings


def build(args: dict[str, Any]):
    """The sampler application (bound SamplerDeployment) for the settings in `args`."""
    unknown = sorted(set(args) - set(SamplerSettings.model_fields))
    if unknown:
        raise ValueError(f"unknown sampler settings in the Serve config args: {unknown}")
    settings = SamplerSettings(**args)
    if settings.tls:
        raise ValueError(
            "a Serve config cannot serve the sampler over TLS (Serve's gRPC proxy binds plaintext"
            " only and there is no relay in front of it here): leave the TLS settings unset and"
            " terminate TLS in front of the proxy, or run `autoperi serve sampler`"
        )
    return build_app(settings)
