"""A tiny generic service (bytes in, bytes out) for testing the kit over real sockets."""

import asyncio
import contextlib
from collections.abc import AsyncIterator

import grpc

from svc_kit import (
    ClientSecurity,
    InvalidInput,
    ServiceServer,
    ServiceSettings,
    TooLarge,
    build_server,
    check_deadline,
    open_aio_channel,
)

SERVICE = "autoperi.test.v1.Echo"


class MissingThing(KeyError):
    """A foreign exception type that a service maps to NOT_FOUND through `error_map`."""


async def echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    """Behaviour chosen by the request: echo, bad input, crash, slow, deadline, missing."""
    if request == b"invalid":
        raise InvalidInput("lattice is singular: volume 0.0 A^3")
    if request == b"boom":
        raise RuntimeError("secret internal detail at /srv/data")
    if request.startswith(b"slow"):
        await asyncio.sleep(float(request[4:] or 0.5))
    if request == b"deadline":
        check_deadline(context, min_remaining_s=30.0, what="featurisation")
    if request == b"missing":
        raise MissingThing("dataset 'mp-20' not found")
    return request


async def chunks(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
    """Streams the request's bytes one by one; fails with InvalidInput on a '!'."""
    for byte in request:
        if byte == ord("!"):
            raise InvalidInput("'!' is not allowed")
        yield bytes([byte])


async def collect(requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> bytes:
    """Concatenates a client stream; more than 10 bytes in total is TooLarge."""
    out = b""
    async for part in requests:
        out += part
        if len(out) > 10:
            raise TooLarge(f"{len(out)} bytes received, the limit is 10")
    return out


def echo_handler() -> grpc.GenericRpcHandler:
    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Echo": grpc.unary_unary_rpc_method_handler(echo),
            "Chunks": grpc.unary_stream_rpc_method_handler(chunks),
            "Collect": grpc.stream_unary_rpc_method_handler(collect),
        },
    )


def _add_echo(servicer: object, server: grpc.aio.Server) -> None:
    server.add_generic_rpc_handlers((echo_handler(),))


def create_echo_server(settings: ServiceSettings) -> ServiceServer:
    """The test service built the way every project service is built."""
    return build_server(
        settings,
        [(_add_echo, None)],
        [SERVICE],
        error_map={MissingThing: grpc.StatusCode.NOT_FOUND},
    )


@contextlib.asynccontextmanager
async def running(
    security: ClientSecurity | None = None, **overrides
) -> AsyncIterator[tuple[ServiceServer, grpc.aio.Channel]]:
    """A started echo server on a free port (settings `overrides`) and a channel to it secured
    as `security` says (None: plaintext, no token); stopped on exit."""
    settings = ServiceSettings(host="127.0.0.1", port=0, **overrides)
    service = create_echo_server(settings)
    await service.start()
    address = service.address
    channel = (
        grpc.aio.insecure_channel(address)
        if security is None
        else open_aio_channel(address, security)
    )
    try:
        yield service, channel
    finally:
        await channel.close()
        await service.stop(grace=0)


def echo_call(channel: grpc.aio.Channel):
    return channel.unary_unary(f"/{SERVICE}/Echo")
