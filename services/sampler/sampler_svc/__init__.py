"""The sampler service: crystals from a trained checkpoint, as a Ray Serve app with gRPC ingress.

`deploy(checkpoint, grpc_port, http_port, settings)` starts Serve's gRPC proxy with
SamplerService and deploys `SamplerDeployment` (one checkpoint loaded per replica: CSP for a
CSP checkpoint, de novo for a `task: dng` one; requests batched by atom count; bounded
queues); `sampler_svc.client` is the typed client; `sampler_svc.main.main` runs it until
SIGINT/SIGTERM (`autoperi serve sampler`).

Calls need the metadata `("application", <app name>)` (default "sampler") when more than one
Serve app runs. Overload: a replica holds `max_ongoing_requests`, the proxy queues
`max_queued_requests` more and rejects the rest with RESOURCE_EXHAUSTED (Serve's
BackPressureError, mapped by the proxy).

Health: the Serve gRPC proxy serves its own `/ray.serve.RayServeAPIService/Healthz` (OK while
the proxy is healthy; no metadata needed) and `/ray.serve.RayServeAPIService/ListApplications`.
The standard `grpc.health.v1.Health/Check` is registered on the proxy too and answered by the
deployment (SERVING once a replica runs): with one Serve app it needs no metadata, otherwise send
the application metadata (e.g. `grpc_health_probe -rpc-header application:sampler`). `Watch`
is not served.
"""

from svc_kit import lazy_exports

__all__ = [
    "SERVICER_FUNCTIONS",
    "Chunk",
    "DeNovoSpec",
    "Engine",
    "EngineInfo",
    "GeneratorEngine",
    "Job",
    "Limits",
    "SampleSpecIn",
    "SamplerSettings",
    "build_app",
    "deploy",
    "load_engine",
    "serve_until_signal",
    "validate",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "Chunk": "._engine",
        "DeNovoSpec": "._engine",
        "Engine": "._engine",
        "EngineInfo": "._engine",
        "GeneratorEngine": "._engine",
        "load_engine": "._engine",
        "Job": "._jobs",
        "Limits": "._jobs",
        "SampleSpecIn": "._jobs",
        "validate": "._jobs",
        "SERVICER_FUNCTIONS": "._launch",
        "build_app": "._launch",
        "deploy": "._launch",
        "serve_until_signal": "._launch",
        "SamplerSettings": "._settings",
    },
)
