"""Client channels to the services: TLS and a bearer token when configured, plaintext otherwise.

Every call between services (and from the stack, the loop and the clients) opens its channel
with `open_channel` (blocking stubs) or `open_aio_channel` (asyncio stubs), so one set of
variables configures a process's clients, all of them off by default:

    AUTOPERI_TLS_CA_FILE           PEM CA bundle that signed the servers' certificates (TLS on)
    AUTOPERI_TLS                   1: TLS with the system's root certificates
    AUTOPERI_TLS_CLIENT_CERT_FILE  PEM client certificate (servers that require mutual TLS)
    AUTOPERI_TLS_CLIENT_KEY_FILE   its private key
    AUTOPERI_AUTH_TOKEN            bearer token sent as `authorization: Bearer <token>`
"""

from collections import namedtuple
from pathlib import Path
from typing import Self

import grpc
from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from svc_kit._security import AUTHORIZATION, BEARER

Options = list[tuple[str, object]]


class ClientSecurity(BaseSettings):
    """How this process's clients reach the services (variables AUTOPERI_TLS*, AUTOPERI_AUTH_*;
    keyword arguments override them)."""

    model_config = SettingsConfigDict(env_prefix="AUTOPERI_", extra="ignore", frozen=True)

    tls: bool = Field(False, description="TLS with the system roots (implied by tls_ca_file)")
    tls_ca_file: Path | None = Field(None, description="PEM CA bundle the servers' certs chain to")
    tls_client_cert_file: Path | None = Field(None, description="PEM client certificate (mTLS)")
    tls_client_key_file: Path | None = Field(None, description="its PEM private key")
    auth_token: SecretStr | None = Field(None, description="bearer token sent with every call")

    @model_validator(mode="after")
    def _check_client_certificate(self) -> Self:
        if (self.tls_client_cert_file is None) != (self.tls_client_key_file is None):
            raise ValueError("tls_client_cert_file and tls_client_key_file go together")
        if self.tls_client_cert_file is not None and not self.uses_tls:
            raise ValueError("a client certificate needs TLS (tls_ca_file or tls)")
        return self

    @property
    def uses_tls(self) -> bool:
        """Whether channels are TLS."""
        return self.tls or self.tls_ca_file is not None

    def without_tls(self) -> "ClientSecurity":
        """The same token over plaintext (for a server that cannot serve TLS, e.g. Serve's
        gRPC proxy reached directly)."""
        off = ("tls_ca_file", "tls_client_cert_file", "tls_client_key_file")
        return self.model_copy(update={"tls": False} | dict.fromkeys(off))

    def credentials(self) -> grpc.ChannelCredentials:
        """TLS channel credentials (the CA file or the system roots; the client certificate
        when given)."""
        key, cert = self.tls_client_key_file, self.tls_client_cert_file
        return grpc.ssl_channel_credentials(
            root_certificates=self.tls_ca_file.read_bytes() if self.tls_ca_file else None,
            private_key=key.read_bytes() if key else None,
            certificate_chain=cert.read_bytes() if cert else None,
        )

    def token_metadata(self) -> tuple[str, str] | None:
        """The `authorization` metadata pair, or None without a token."""
        if self.auth_token is None:
            return None
        return (AUTHORIZATION, BEARER + self.auth_token.get_secret_value())


def open_channel(
    address: str, security: ClientSecurity | None = None, options: Options = ()
) -> grpc.Channel:
    """A blocking channel to `address` ('host:port') secured as `security` says (None: from the
    environment, see the module docstring); close it (or use it in a `with`)."""
    security = ClientSecurity() if security is None else security
    options = list(options)
    if security.uses_tls:
        channel = grpc.secure_channel(address, security.credentials(), options)
    else:
        channel = grpc.insecure_channel(address, options)
    pair = security.token_metadata()
    return channel if pair is None else grpc.intercept_channel(channel, _Token(pair))


def open_aio_channel(
    address: str, security: ClientSecurity | None = None, options: Options = ()
) -> grpc.aio.Channel:
    """`open_channel` for asyncio stubs (create it inside the event loop that uses it)."""
    security = ClientSecurity() if security is None else security
    pair = security.token_metadata()
    interceptors = [] if pair is None else [token(pair) for token in _AIO_TOKENS]
    given = {"options": list(options), "interceptors": interceptors}
    if security.uses_tls:
        return grpc.aio.secure_channel(address, security.credentials(), **given)
    return grpc.aio.insecure_channel(address, **given)


_Details = namedtuple(
    "_Details", ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression")
)


class _CallDetails(_Details, grpc.ClientCallDetails):
    """Call details with the token added (blocking channels)."""


class _Token(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Adds the `authorization` pair to every call of a blocking channel."""

    def __init__(self, pair: tuple[str, str]) -> None:
        self.pair = pair

    def _details(self, details: grpc.ClientCallDetails) -> _CallDetails:
        metadata = [*(details.metadata or ()), self.pair]
        compression = getattr(details, "compression", None)
        return _CallDetails(
            details.method,
            details.timeout,
            metadata,
            details.credentials,
            details.wait_for_ready,
            compression,
        )

    def _intercept(self, continuation, client_call_details, request_or_iterator):
        return continuation(self._details(client_call_details), request_or_iterator)

    intercept_unary_unary = intercept_unary_stream = _intercept
    intercept_stream_unary = intercept_stream_stream = _intercept


class _AioToken:
    """Adds the `authorization` pair to the calls of an asyncio channel. grpc.aio files an
    interceptor under one call type only, so the channel gets one subclass per type."""

    def __init__(self, pair: tuple[str, str]) -> None:
        self.pair = pair

    async def _intercept(self, continuation, client_call_details, request_or_iterator):
        details = client_call_details
        metadata = grpc.aio.Metadata(*(details.metadata or ()), self.pair)
        return await continuation(details._replace(metadata=metadata), request_or_iterator)


class _AioUnaryUnary(_AioToken, grpc.aio.UnaryUnaryClientInterceptor):
    intercept_unary_unary = _AioToken._intercept


class _AioUnaryStream(_AioToken, grpc.aio.UnaryStreamClientInterceptor):
    intercept_unary_stream = _AioToken._intercept


class _AioStreamUnary(_AioToken, grpc.aio.StreamUnaryClientInterceptor):
    intercept_stream_unary = _AioToken._intercept


class _AioStreamStream(_AioToken, grpc.aio.StreamStreamClientInterceptor):
    intercept_stream_stream = _AioToken._intercept


_AIO_TOKENS = (_AioUnaryUnary, _AioUnaryStream, _AioStreamUnary, _AioStreamStream)
