"""The sampler as a Serve application builder, for Serve config files: `serve run` / `serve
deploy` and a KubeRay RayService's `serveConfigV2` (`import_path: sampler_svc.app:build`).

`args` are SamplerSettings fields (checkpoint, max_atoms, torch_threads, num_replicas,
replica_cpus, the admission limits and batching knobs); fields not given come from the
AUTOPERI_SAMPLER_* variables of the process that builds the app, or their defaults; an unknown
name is refused. What Serve owns stays in the config file: the gRPC proxy (`grpc_options` with
`SERVICER_FUNCTIONS`) and any per-deployment override (e.g. `max_replicas_per_node`).
"""

from typing import Any

from sampler_svc._launch import build_app
from sampler_svc._settings import SamplerSettings


def build(args: dict[str, Any]):
    """The sampler application (bound SamplerDeployment) for the settings in `args`."""
    unknown = sorted(set(args) - set(SamplerSettings.model_fields))
    if unknown:
        raise ValueError(f"unknown sampler settings in the Serve config args: {unknown}")
    return build_app(SamplerSettings(**args))
