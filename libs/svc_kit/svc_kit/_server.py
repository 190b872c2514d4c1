"""The gRPC server factory: servicers + health (+ reflection) + interceptors, bound to a port."""

import asyncio
import inspect
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from svc_kit._errors import ErrorMap
from svc_kit._interceptors import ServiceInterceptor
from svc_kit._security import security_interceptors, server_credentials
from svc_kit._settings import ServiceSettings

log = logging.getLogger("svc_kit.server")
SERVING = health_pb2.HealthCheckResponse.SERVING
Servicer = tuple[
    Callable[[object, grpc.aio.Server], None], object
]  # (add_XServicer_to_server, obj)


@dataclass
class ServiceServer:
    """A built server: `start()` serves and reports SERVING, `stop()` drains gracefully.

    `port` is the bound port (the real one when settings.port is 0). `on_stop` holds callables
    (e.g. a core's `close`, stopping its worker processes; coroutine functions are awaited) that
    `stop()` runs, in order, once the RPCs have drained.
    """

    server: grpc.aio.Server
    health: health.aio.HealthServicer
    port: int
    host: str
    service_names: tuple[str, ...]
    settings: ServiceSettings
    on_stop: list[Callable[[], object]] = field(default_factory=list, repr=False)
    _stopped: bool = field(default=False, repr=False)

    @property
    def address(self) -> str:
        """'host:port' a local client can dial."""
        host = "127.0.0.1" if self.host in ("[::]", "0.0.0.0", "") else self.host
        return f"{host}:{self.port}"

    async def start(self) -> None:
        """Start serving; health reports SERVING for every service and overall ('')."""
        await self.server.start()
        for name in ("", *self.service_names):
            await self.health.set(name, SERVING)
        log.info(
            "serving %s on port %d",
            ", ".join(self.service_names),
            self.port,
            extra={"services": list(self.service_names), "port": self.port},
        )

    async def stop(self, grace: float | None = None) -> None:
        """Report NOT_SERVING, wait `shutdown_delay_s`, refuse new RPCs and let in-flight ones
        finish within `grace` seconds (default: settings.grace_period_s). Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        await self.health.enter_graceful_shutdown()
        if self.settings.shutdown_delay_s:
            await asyncio.sleep(self.settings.shutdown_delay_s)
        grace = self.settings.grace_period_s if grace is None else grace
        log.info("stopping (grace %.1fs)", grace, extra={"grace_s": grace})
        await self.server.stop(grace)
        for close in self.on_stop:
            try:
                result = close()
                if inspect.isawaitable(result):
                    await result
            except Exception:  # one failing cleanup must not skip the others
                log.exception("cleanup %r failed on stop", close)

    async def wait_for_termination(self) -> None:
        """Return when the server has stopped."""
        await self.server.wait_for_termination()


def build_server(
    settings: ServiceSettings,
    servicers: Iterable[Servicer],
    service_names: Sequence[str],
    *,
    error_map: ErrorMap | None = None,
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
) -> ServiceServer:
    """Build (not start) a grpc.aio server for `settings`, with the standard health service,
    optional reflection, request logging and error mapping, and the security `settings` ask for:
    a TLS port (with client certificates required) and the bearer-token check (refused RPCs
    are logged as UNAUTHENTICATED). Call it inside the event loop that will run the server.
    `service_names` are the full proto names ('autoperi.ingest.v1.Ingest'). Raises RuntimeError
    if the address cannot be bound, OSError/ValueError for unreadable certificate or token
    files."""
    options = [
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
        ("grpc.so_reuseport", 0),
    ]
    server = grpc.aio.server(
        interceptors=[
            ServiceInterceptor(error_map),
            *security_interceptors(settings),
            *interceptors,
        ],
        options=options,
        maximum_concurrent_rpcs=settings.max_concurrent_rpcs,
    )
    for add, servicer in servicers:
        add(servicer, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    if settings.reflection:
        _enable_reflection(server, service_names)
    port = _bind(server, settings)
    return ServiceServer(
        server, health_servicer, port, settings.host, tuple(service_names), settings
    )


def _bind(server: grpc.aio.Server, settings: ServiceSettings) -> int:
    """Bind settings' address, TLS when configured; the bound port."""
    address = f"{settings.host}:{settings.port}"
    credentials = server_credentials(settings)
    if credentials is None:
        port = server.add_insecure_port(address)
    else:
        port = server.add_secure_port(address, credentials)
    if not port:
        raise RuntimeError(f"cannot bind {address}")
    log.info(
        "%s on %s (client certificates %s, bearer tokens %s)",
        "TLS" if credentials else "plaintext",
        address,
        "required" if settings.tls_client_ca_file else "not required",
        "required" if settings.auth_tokens_file else "not required",
    )
    return port


def _enable_reflection(server: grpc.aio.Server, service_names: Sequence[str]) -> None:
    from grpc_reflection.v1alpha import reflection

    names = (*service_names, health.SERVICE_NAME, reflection.SERVICE_NAME)
    reflection.enable_server_reflection(names, server)
