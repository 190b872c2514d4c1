"""A TLS-terminating gRPC relay: serves the methods of given services on a server built by
`build_server` (TLS, client certificates, bearer tokens, logging as any service) and forwards
every call, as raw bytes, to a plaintext upstream on the same host.

It exists for servers that cannot serve TLS themselves (Ray Serve's gRPC proxy binds plaintext
only). Forwarded: the request and response messages unchanged, the caller's metadata (the
bearer token and routing keys such as Serve's `application` included), the remaining deadline,
cancellation, and the upstream's status code and details. The relay answers health itself
(SERVING once started), so start it after the upstream is ready.
"""

import logging
from collections.abc import AsyncIterator, Iterable, Mapping

import grpc
from google.protobuf.descriptor import ServiceDescriptor

from svc_kit._server import ServiceServer, build_server
from svc_kit._settings import ServiceSettings

log = logging.getLogger("svc_kit.relay")
_DROPPED_KEYS = ("user-agent", "content-type", "te", "host")  # set by the transport


def forwarded_metadata(metadata: Iterable[tuple[str, str | bytes]] | None) -> tuple:
    """The caller's metadata without the keys the transport sets (pseudo-headers, grpc-*)."""
    return tuple(
        (key, value)
        for key, value in metadata or ()
        if not key.startswith((":", "grpc-")) and key not in _DROPPED_KEYS
    )


def relayed_methods(services: Iterable[ServiceDescriptor]) -> dict[str, bool]:
    """Method path ('/package.Service/Method') -> whether it streams responses, for every
    method of `services`; ValueError for a client-streaming method (not relayed)."""
    methods = {}
    for service in services:
        for method in service.methods:
            if method.client_streaming:
                raise ValueError(f"cannot relay client-streaming {method.full_name}")
            methods[f"/{service.full_name}/{method.name}"] = method.server_streaming
    return methods


class RelayHandler(grpc.GenericRpcHandler):
    """Forwards the unary and server-streaming `methods` (path -> streams responses) to
    `upstream` (a grpc.aio channel); other methods are left to the server (UNIMPLEMENTED)."""

    def __init__(self, upstream: grpc.aio.Channel, methods: Mapping[str, bool]) -> None:
        self._upstream = upstream
        self._methods = {name: self._handler(name, streams) for name, streams in methods.items()}

    @property
    def methods(self) -> tuple[str, ...]:
        """The relayed method paths ('/package.Service/Method')."""
        return tuple(self._methods)

    def service(self, handler_call_details: grpc.HandlerCallDetails):
        return self._methods.get(handler_call_details.method)

    def _handler(self, name: str, server_streaming: bool) -> grpc.RpcMethodHandler:
        if server_streaming:
            return grpc.unary_stream_rpc_method_handler(self._stream(name))
        return grpc.unary_unary_rpc_method_handler(self._unary(name))

    def _unary(self, name: str):
        call_upstream = self._upstream.unary_unary(name)

        async def relay(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            call = call_upstream(request, **_call_options(context))
            try:
                return await call
            except grpc.aio.AioRpcError as error:
                await context.abort(error.code(), error.details() or "")
            finally:
                call.cancel()  # a no-op once done; ends the upstream call if the caller left

        return relay

    def _stream(self, name: str):
        call_upstream = self._upstream.unary_stream(name)

        async def relay(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator:
            call = call_upstream(request, **_call_options(context))
            try:
                async for message in call:
                    yield message
            except grpc.aio.AioRpcError as error:
                await context.abort(error.code(), error.details() or "")
            finally:
                call.cancel()

        return relay


def _call_options(context: grpc.aio.ServicerContext) -> dict:
    return {
        "metadata": forwarded_metadata(context.invocation_metadata()),
        "timeout": context.time_remaining(),
    }


async def build_relay(
    settings: ServiceSettings, upstream: str, methods: Mapping[str, bool]
) -> ServiceServer:
    """A relay server (not started) on `settings`' address and security, forwarding `methods`
    (`relayed_methods`) to the plaintext `upstream` ('host:port'). Call it inside the event
    loop that will run it; stopping the server closes the upstream channel."""
    options = [
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
    ]
    channel = grpc.aio.insecure_channel(upstream, options=options)
    handler = RelayHandler(channel, methods)
    names = sorted({name.split("/")[1] for name in methods})
    server = build_server(settings, [], names)
    server.server.add_generic_rpc_handlers((handler,))
    server.on_stop.append(channel.close)
    log.info("relaying %d methods to %s", len(handler.methods), upstream)
    return server
