"""TLS and bearer tokens over real sockets: certificates made by the test, a real TLS server."""

import asyncio

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pydantic import ValidationError

from svc_kit import (
    BearerTokens,
    ClientSecurity,
    ServiceSettings,
    Unauthenticated,
    open_aio_channel,
    open_channel,
)
from svc_kit.conftest import SERVICE, echo_call, running
from svc_kit.testing import make_tls_files

SERVING = health_pb2.HealthCheckResponse.SERVING


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    return make_tls_files(tmp_path_factory.mktemp("tls"))


def _secured(tls, client_ca: bool = False) -> dict:
    """Server settings: TLS and tokens (and client certificates when `client_ca`)."""
    settings = {
        "tls_cert_file": tls.server_cert,
        "tls_key_file": tls.server_key,
        "auth_tokens_file": tls.tokens,
    }
    return settings | ({"tls_client_ca_file": tls.ca_cert} if client_ca else {})


async def _code(call, request: bytes = b"hi") -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call(request, timeout=5)
    return info.value.code(), info.value.details() or ""


async def _health(channel) -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    return (await stub.Check(health_pb2.HealthCheckRequest(service=SERVICE), timeout=5)).status


def test_tls_with_the_token_succeeds_and_without_or_wrong_is_unauthenticated(tls):
    async def scenario():
        good = ClientSecurity(tls_ca_file=tls.ca_cert, auth_token=tls.token)
        async with running(good, **_secured(tls)) as (service, channel):
            assert service.settings.tls
            assert await echo_call(channel)(b"hello", timeout=5) == b"hello"
            chunks = channel.unary_stream(f"/{SERVICE}/Chunks")
            assert [c async for c in chunks(b"ab", timeout=5)] == [b"a", b"b"]
            collect = channel.stream_unary(f"/{SERVICE}/Collect")
            assert await collect(iter([b"a", b"b"]), timeout=5) == b"ab"
            for token in (None, "not-the-token", f"{tls.token}x"):
                security = ClientSecurity(tls_ca_file=tls.ca_cert, auth_token=token)
                async with open_aio_channel(service.address, security) as other:
                    code, details = await _code(echo_call(other))
                    assert code == grpc.StatusCode.UNAUTHENTICATED
                    assert details == "missing or invalid bearer token"
                    collect = other.stream_unary(f"/{SERVICE}/Collect")
                    assert (await _code(collect, iter([b"a"])))[0] == code
                    assert await _health(other) == SERVING  # health needs no token

    asyncio.run(scenario())


def test_a_plaintext_client_cannot_talk_to_a_tls_server(tls):
    async def scenario():
        async with running(**_secured(tls)) as (_, plaintext):
            code, _ = await _code(echo_call(plaintext))
            assert code == grpc.StatusCode.UNAVAILABLE
            with pytest.raises(grpc.aio.AioRpcError):
                await _health(plaintext)

    asyncio.run(scenario())


def test_a_client_that_does_not_trust_the_server_ca_is_refused(tls, tmp_path):
    other_ca = make_tls_files(tmp_path / "other").ca_cert

    async def scenario():
        wrong_ca = ClientSecurity(tls_ca_file=other_ca, auth_token=tls.token)
        async with running(wrong_ca, **_secured(tls)) as (_, channel):
            assert (await _code(echo_call(channel)))[0] == grpc.StatusCode.UNAVAILABLE

    asyncio.run(scenario())


def test_with_a_client_ca_a_client_without_its_certificate_is_refused(tls):
    async def scenario():
        no_cert = ClientSecurity(tls_ca_file=tls.ca_cert, auth_token=tls.token)
        async with running(no_cert, **_secured(tls, client_ca=True)) as (service, channel):
            assert (await _code(echo_call(channel)))[0] == grpc.StatusCode.UNAVAILABLE
            with_cert = no_cert.model_copy(
                update={
                    "tls_client_cert_file": tls.client_cert,
                    "tls_client_key_file": tls.client_key,
                }
            )
            async with open_aio_channel(service.address, with_cert) as mutual:
                assert await echo_call(mutual)(b"mutual", timeout=5) == b"mutual"

    asyncio.run(scenario())


def test_blocking_channels_send_the_token_and_tokens_work_without_tls(tls):
    async def scenario():
        async with running(auth_tokens_file=tls.tokens) as (service, _):
            return await asyncio.to_thread(_blocking_calls, service.address, tls.token)

    assert asyncio.run(scenario()) == (b"sync", grpc.StatusCode.UNAUTHENTICATED)


def _blocking_calls(address: str, token: str) -> tuple[bytes, grpc.StatusCode]:
    """A call with the token, and the code of one without (plaintext, blocking stubs)."""
    with open_channel(address, ClientSecurity(auth_token=token)) as channel:
        reply = channel.unary_unary(f"/{SERVICE}/Echo")(b"sync", timeout=5)
    with open_channel(address, ClientSecurity(auth_token=token).without_tls()) as channel:
        assert channel.unary_unary(f"/{SERVICE}/Echo")(b"sync", timeout=5) == reply
    no_token = ClientSecurity(auth_token=None)
    with open_channel(address, no_token) as channel, pytest.raises(grpc.RpcError) as info:
        channel.unary_unary(f"/{SERVICE}/Echo")(b"sync", timeout=5)
    return reply, info.value.code()


def test_token_files_skip_blank_lines_and_comments_and_must_hold_a_token(tmp_path):
    path = tmp_path / "tokens"
    path.write_text("# rotated 2026-01\n\n  first  \nsecond\n")
    tokens = BearerTokens.from_file(path)
    assert tokens.accepts([("authorization", "Bearer first")])
    assert tokens.accepts([("x-other", "1"), ("authorization", "Bearer second")])
    assert not tokens.accepts([("authorization", "first")])  # no scheme
    assert not tokens.accepts([("authorization", "Bearer # rotated 2026-01")])
    assert not tokens.accepts([])
    assert "first" not in repr(tokens)
    with pytest.raises(Unauthenticated, match="missing or invalid bearer token"):
        tokens.check([("authorization", "Bearer third")])
    path.write_text("# none yet\n\n")
    with pytest.raises(ValueError, match="holds no token"):
        BearerTokens.from_file(path)


def test_security_settings_are_off_by_default_and_refuse_half_configurations(tls):
    settings = ServiceSettings()
    assert not settings.tls and settings.auth_tokens_file is None
    with pytest.raises(ValidationError, match="set together"):
        ServiceSettings(tls_cert_file=tls.server_cert)
    with pytest.raises(ValidationError, match="mTLS"):
        ServiceSettings(tls_client_ca_file=tls.ca_cert)
    with pytest.raises(ValidationError, match="go together"):
        ClientSecurity(tls_ca_file=tls.ca_cert, tls_client_cert_file=tls.client_cert)
    with pytest.raises(ValidationError, match="needs TLS"):
        ClientSecurity(tls_client_cert_file=tls.client_cert, tls_client_key_file=tls.client_key)


def test_client_security_reads_the_environment(tls, monkeypatch):
    monkeypatch.setenv("AUTOPERI_TLS_CA_FILE", str(tls.ca_cert))
    monkeypatch.setenv("AUTOPERI_AUTH_TOKEN", tls.token)
    security = ClientSecurity()
    assert security.uses_tls and security.tls_ca_file == tls.ca_cert
    assert security.token_metadata() == ("authorization", f"Bearer {tls.token}")
    assert tls.token not in repr(security)
    plain = security.without_tls()
    assert not plain.uses_tls and plain.token_metadata() == security.token_metadata()
