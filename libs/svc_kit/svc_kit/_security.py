"""Server-side security: TLS credentials and the bearer-token check, both off unless configured.

A client authenticates with the metadata `authorization: Bearer <token>`; the server accepts the
tokens of `ServiceSettings.auth_tokens_file` (one per line, blank lines and `#` comments
ignored), read once when the server is built (rotating tokens: list old and new, restart, then
drop the old). Tokens are compared in constant time (`hmac.compare_digest` of their SHA-256
digests, against every accepted token). The gRPC health service needs no token, so load
balancers and the stack's readiness probes work unchanged.
"""

import hashlib
import hmac
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import grpc

from svc_kit._errors import Unauthenticated
from svc_kit._settings import ServiceSettings

AUTHORIZATION = "authorization"  # the metadata key (gRPC metadata keys are lower case)
BEARER = "Bearer "
REFUSED = "missing or invalid bearer token"
OPEN_PREFIXES = ("/grpc.health.v1.Health/",)  # methods that need no token
Metadata = Iterable[tuple[str, str | bytes]]


def _digest(token: str | bytes) -> bytes:
    return hashlib.sha256(token.encode() if isinstance(token, str) else token).digest()


@dataclass(frozen=True)
class BearerTokens:
    """The accepted bearer tokens (as SHA-256 digests; never logged or shown)."""

    digests: tuple[bytes, ...]

    def __repr__(self) -> str:
        return f"BearerTokens({len(self.digests)} tokens)"

    @classmethod
    def from_file(cls, path: str | Path) -> "BearerTokens":
        """The tokens of `path`, one per line; ValueError when it holds none."""
        lines = (line.strip() for line in Path(path).read_text().splitlines())
        tokens = [line for line in lines if line and not line.startswith("#")]
        if not tokens:
            raise ValueError(f"auth_tokens_file {path} holds no token")
        return cls(tuple(_digest(token) for token in tokens))

    def accepts(self, metadata: Metadata | None) -> bool:
        """Whether `metadata` carries `authorization: Bearer <an accepted token>`."""
        values = [value for key, value in metadata or () if key.lower() == AUTHORIZATION]
        if len(values) != 1 or not isinstance(values[0], str):
            return False
        if not values[0].startswith(BEARER):
            return False
        offered = _digest(values[0][len(BEARER) :].strip())
        return any([hmac.compare_digest(offered, accepted) for accepted in self.digests])

    def check(self, metadata: Metadata | None) -> None:
        """Raise Unauthenticated unless `metadata` carries an accepted token."""
        if not self.accepts(metadata):
            raise Unauthenticated(REFUSED)


class TokenInterceptor(grpc.aio.ServerInterceptor):
    """Refuses every RPC without an accepted bearer token (UNAUTHENTICATED), health excepted.

    A refused call's handler is replaced by one that aborts before reading the request, so the
    servicer never runs."""

    def __init__(self, tokens: BearerTokens) -> None:
        self.tokens = tokens

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(handler_call_details)
        if handler is None or handler_call_details.method.startswith(OPEN_PREFIXES):
            return handler
        if self.tokens.accepts(handler_call_details.invocation_metadata):
            return handler
        return _refusing(handler)


async def _refuse(request, context: grpc.aio.ServicerContext) -> None:
    await context.abort(grpc.StatusCode.UNAUTHENTICATED, REFUSED)


_HANDLERS = {
    "unary_unary": grpc.unary_unary_rpc_method_handler,
    "unary_stream": grpc.unary_stream_rpc_method_handler,
    "stream_unary": grpc.stream_unary_rpc_method_handler,
    "stream_stream": grpc.stream_stream_rpc_method_handler,
}


def _refusing(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """A handler of the kind and codecs of `handler` whose behaviour is the refusal."""
    kind = next(k for k in _HANDLERS if getattr(handler, k) is not None)
    return _HANDLERS[kind](
        _refuse,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


def security_interceptors(settings: ServiceSettings) -> list[grpc.aio.ServerInterceptor]:
    """The token check when `settings.auth_tokens_file` is set, else nothing."""
    if settings.auth_tokens_file is None:
        return []
    return [TokenInterceptor(BearerTokens.from_file(settings.auth_tokens_file))]


def server_credentials(settings: ServiceSettings) -> grpc.ServerCredentials | None:
    """TLS credentials of `settings` (client certificates required when tls_client_ca_file is
    set), or None for a plaintext port."""
    if not settings.tls:
        return None
    pair = (settings.tls_key_file.read_bytes(), settings.tls_cert_file.read_bytes())
    client_ca = settings.tls_client_ca_file
    return grpc.ssl_server_credentials(
        [pair],
        root_certificates=client_ca.read_bytes() if client_ca else None,
        require_client_auth=client_ca is not None,
    )
