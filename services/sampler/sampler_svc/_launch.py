"""Start Serve with the sampler's gRPC ingress, deploy the sampler app, serve until a signal."""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path

from sampler_svc._settings import SamplerSettings

log = logging.getLogger("sampler_svc")

SERVICER_FUNCTIONS = (
    "autoperi.sampler.v1.sampler_pb2_grpc.add_SamplerServiceServicer_to_server",
    "grpc_health.v1.health_pb2_grpc.add_HealthServicer_to_server",
)


def build_app(settings: SamplerSettings):
    """The sampler Serve application (bound deployment) that `settings` describe; a checkpoint
    the sampler cannot serve is refused here, before anything is deployed (ValueError). With
    `auth_tokens_file` every replica reads it and refuses calls without an accepted bearer token
    (health excepted); the file must be readable on the replicas' nodes."""
    from sampler_svc._engine import check_servable

    check_servable(settings.checkpoint)
    from sampler_svc._deployment import SamplerDeployment

    deployment = SamplerDeployment.options(
        num_replicas=settings.num_replicas,
        max_ongoing_requests=settings.max_ongoing_requests,
        max_queued_requests=settings.max_queued_requests,
        user_config=settings.user_config(),
        ray_actor_options={"num_cpus": settings.replica_cpus},
    )
    checkpoint = str(Path(settings.checkpoint).resolve())
    tokens = None if settings.auth_tokens_file is None else str(settings.auth_tokens_file.resolve())
    return deployment.bind(checkpoint, settings.torch_threads, settings.max_atoms, tokens)


START_ATTEMPTS = 3


def start_serve(settings: SamplerSettings, servicer_functions=SERVICER_FUNCTIONS) -> None:
    """Start Serve (on the connected Ray) with HTTP on loopback and the gRPC proxy on
    `settings.port`. Serve has one proxy per node: when Serve is already running its options
    are kept, so every service sharing a Ray cluster must start it with all their servicers.

    Serve gives its proxy a fixed 60 s to come up and kills it otherwise; on a saturated machine
    that can happen, so the start is retried (after shutting the half-started Serve down) up to
    START_ATTEMPTS times."""
    from ray import serve
    from ray.exceptions import RayError

    for attempt in range(1, START_ATTEMPTS + 1):
        try:
            return _start_serve_once(settings, servicer_functions)
        except RayError:
            if attempt == START_ATTEMPTS:
                raise
            log.warning("Serve did not start (attempt %d of %d); retrying", attempt, START_ATTEMPTS)
            serve.shutdown()


def _start_serve_once(settings: SamplerSettings, servicer_functions) -> None:
    from ray import serve
    from ray.serve.config import gRPCOptions

    serve.start(
        http_options={"host": "127.0.0.1", "port": settings.http_port},
        grpc_options=gRPCOptions(
            port=settings.port,
            grpc_servicer_functions=list(servicer_functions),
            request_timeout_s=settings.request_timeout_s,
        ),
    )


def deploy(
    checkpoint: str | Path,
    grpc_port: int,
    http_port: int | None = None,
    settings: SamplerSettings | None = None,
):
    """Deploy the sampler for `checkpoint` behind Serve's gRPC proxy on `grpc_port`; returns the
    app's DeploymentHandle once its replicas are running. Ray must be initialised."""
    from ray import serve
    from ray.serve.schema import LoggingConfig

    update = {"checkpoint": Path(checkpoint), "port": grpc_port}
    if http_port is not None:
        update["http_port"] = http_port
    settings = (settings or SamplerSettings()).model_copy(update=update)
    app = build_app(settings)  # a checkpoint it cannot serve is refused before Serve starts
    start_serve(settings)
    logging_config = LoggingConfig(enable_access_log=False, log_level=settings.log_level)
    return serve.run(
        app,
        name=settings.app_name,
        route_prefix=f"/{settings.app_name}",
        logging_config=logging_config,
    )


def init_ray(address: str | None) -> None:
    """Join the Ray cluster at `address`, or start a local one (authentication off: local)."""
    if address is None:
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    if address is None:
        ray.init(object_store_memory=300 << 20, include_dashboard=False, log_to_driver=False)
    else:
        ray.init(address=address, log_to_driver=False)


def serve_until_signal(settings: SamplerSettings) -> None:
    """Init Ray, deploy, block until SIGINT/SIGTERM, then shut Serve and Ray down (on a joined
    cluster only this app is deleted). With TLS settings Serve's proxy takes `proxy_port` and
    the TLS relay (`relay_until_signal`) takes `port`."""
    import ray
    from ray import serve

    from sampler_svc._engine import check_servable

    check_servable(settings.checkpoint)  # a clear refusal before Ray starts
    init_ray(settings.ray_address)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):  # after ray.init, which installs its own
        signal.signal(sig, lambda *_: stop.set())
    proxy_port = settings.proxy_port if settings.tls else settings.port
    try:
        deploy(settings.checkpoint, proxy_port, settings.http_port, settings)
        log.info("sampler serving %s on gRPC port %d", settings.checkpoint, proxy_port)
        if settings.tls:
            relay_until_signal(settings)
        else:
            stop.wait()
    finally:
        if settings.ray_address is None:
            serve.shutdown()
        else:
            serve.delete(settings.app_name)
        ray.shutdown()


def relay_until_signal(settings: SamplerSettings) -> None:
    """Serve TLS (and the token check) on `settings.port` in front of Serve's plaintext proxy
    on `settings.proxy_port` until SIGINT/SIGTERM: the sampler's methods are relayed (the
    relay answers health itself), admission is left to Serve's proxy."""
    import asyncio

    from autoperi.sampler.v1 import sampler_pb2
    from svc_kit import build_relay, relayed_methods, serve

    methods = relayed_methods(sampler_pb2.DESCRIPTOR.services_by_name.values())
    relay_settings = settings.model_copy(update={"max_concurrent_rpcs": None})
    upstream = f"127.0.0.1:{settings.proxy_port}"
    log.info("TLS relay on port %d in front of Serve's proxy", settings.port)
    asyncio.run(serve(lambda s: build_relay(s, upstream, methods), relay_settings))
