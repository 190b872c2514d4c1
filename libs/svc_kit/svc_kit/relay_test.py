"""The TLS-terminating relay over real sockets: a plaintext upstream (the kit's echo service,
checking tokens itself) behind a relay serving TLS with client certificates and tokens."""

import asyncio
import contextlib
import logging

import grpc
import pytest
from grpc_health.v1 import health_pb2

from svc_kit import ClientSecurity, ServiceSettings, build_relay, open_aio_channel, relayed_methods
from svc_kit.conftest import SERVICE, create_echo_server
from svc_kit.testing import make_tls_files

ECHO_METHODS = {f"/{SERVICE}/Echo": False, f"/{SERVICE}/Chunks": True}


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@contextlib.asynccontextmanager
async def relayed(tls, upstream_up: bool = True):
    """(relay address, a channel with the client certificate and token): an echo upstream
    with tokens on a plaintext loopback port (stopped at once when not `upstream_up`) behind
    a started relay."""
    upstream = create_echo_server(
        ServiceSettings(host="127.0.0.1", port=0, auth_tokens_file=tls.tokens)
    )
    await upstream.start()
    if not upstream_up:
        await upstream.stop(grace=0)
    settings = ServiceSettings(
        host="127.0.0.1",
        port=0,
        tls_cert_file=tls.server_cert,
        tls_key_file=tls.server_key,
        tls_client_ca_file=tls.ca_cert,
        auth_tokens_file=tls.tokens,
    )
    relay = await build_relay(settings, upstream.address, ECHO_METHODS)
    await relay.start()
    channel = open_aio_channel(relay.address, _client(tls, tls.token))
    try:
        yield relay.address, channel
    finally:
        await channel.close()
        await relay.stop(grace=0)
        await upstream.stop(grace=0)


def _client(tls, token: str | None) -> ClientSecurity:
    """TLS with the client certificate, and `token`."""
    return ClientSecurity(
        tls_ca_file=tls.ca_cert,
        tls_client_cert_file=tls.client_cert,
        tls_client_key_file=tls.client_key,
        auth_token=token,
    )


async def _status(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        result = call()
        if hasattr(result, "__aiter__"):
            _ = [message async for message in result]
        else:
            await result
    return info.value.code(), info.value.details() or ""


def test_calls_streams_and_upstream_statuses_pass_through_the_relay(tls):
    async def scenario():
        async with relayed(tls) as (_, channel):
            echo = channel.unary_unary(f"/{SERVICE}/Echo")
            chunks = channel.unary_stream(f"/{SERVICE}/Chunks")
            assert await echo(b"hello", timeout=5) == b"hello"
            assert [c async for c in chunks(b"abc", timeout=5)] == [b"a", b"b", b"c"]
            invalid = await _status(lambda: echo(b"invalid", timeout=5))
            assert invalid == (
                grpc.StatusCode.INVALID_ARGUMENT,
                "lattice is singular: volume 0.0 A^3",
            )
            code, _ = await _status(lambda: chunks(b"ab!", timeout=5))
            assert code == grpc.StatusCode.INVALID_ARGUMENT
            code, _ = await _status(lambda: echo(b"missing", timeout=5))
            assert code == grpc.StatusCode.NOT_FOUND
            code, _ = await _status(lambda: echo(b"slow2", timeout=0.3))
            assert code == grpc.StatusCode.DEADLINE_EXCEEDED
            collect = channel.stream_unary(f"/{SERVICE}/Collect")  # not relayed
            code, _ = await _status(lambda: collect(iter([b"a"]), timeout=5))
            assert code == grpc.StatusCode.UNIMPLEMENTED

    asyncio.run(scenario())


def test_the_deadline_travels_upstream(tls):
    """The upstream sees the caller's remaining time: its own check refuses a call with less
    than 30 s left (FAILED_PRECONDITION-like deadline error), and accepts one with more."""

    async def scenario():
        async with relayed(tls) as (_, channel):
            echo = channel.unary_unary(f"/{SERVICE}/Echo")
            code, details = await _status(lambda: echo(b"deadline", timeout=5))
            assert code == grpc.StatusCode.DEADLINE_EXCEEDED
            assert "featurisation" in details
            assert await echo(b"deadline", timeout=60) == b"deadline"

    asyncio.run(scenario())


def test_tokens_are_checked_by_the_relay_and_forwarded_upstream(tls):
    async def scenario():
        async with relayed(tls) as (address, _):
            for token in (None, "wrong"):
                async with open_aio_channel(address, _client(tls, token)) as channel:
                    echo = channel.unary_unary(f"/{SERVICE}/Echo")
                    code, _ = await _status(lambda echo=echo: echo(b"hi", timeout=5))
                    assert code == grpc.StatusCode.UNAUTHENTICATED
            plaintext = _client(tls, tls.token).without_tls()
            async with open_aio_channel(address, plaintext) as channel:
                echo = channel.unary_unary(f"/{SERVICE}/Echo")
                code, _ = await _status(lambda: echo(b"hi", timeout=5))
                assert code == grpc.StatusCode.UNAVAILABLE  # plaintext client, TLS port

    asyncio.run(scenario())


def test_an_upstream_that_is_down_is_unavailable(tls):
    async def scenario():
        async with relayed(tls, upstream_up=False) as (_, channel):
            echo = channel.unary_unary(f"/{SERVICE}/Echo")
            code, _ = await _status(lambda: echo(b"hi", timeout=5))
            assert code == grpc.StatusCode.UNAVAILABLE

    asyncio.run(scenario())


def test_relayed_methods_follow_the_service_descriptor():
    health = health_pb2.DESCRIPTOR.services_by_name["Health"]
    methods = relayed_methods([health])
    assert methods["/grpc.health.v1.Health/Check"] is False
    assert methods["/grpc.health.v1.Health/Watch"] is True
    assert set(methods) == {f"/grpc.health.v1.Health/{m.name}" for m in health.methods}


def test_a_caller_that_leaves_cancels_the_upstream_call(tls, caplog):
    """Both the relay and the upstream log the call as CANCELLED within a second, long before
    the upstream's 5 s of work would have ended it."""

    async def scenario():
        async with relayed(tls) as (_, channel):
            call = channel.unary_unary(f"/{SERVICE}/Echo")(b"slow5", timeout=30)
            await asyncio.sleep(0.5)
            call.cancel()
            await asyncio.sleep(1.0)

    with caplog.at_level(logging.INFO, logger="svc_kit.rpc"):
        asyncio.run(scenario())
    cancelled = [
        r for r in caplog.records if r.getMessage().startswith(f"/{SERVICE}/Echo CANCELLED")
    ]
    assert len(cancelled) == 2, [r.getMessage() for r in caplog.records]
    assert all(r.duration_ms < 2000 for r in cancelled)
