"""The shared gRPC service kit: settings, server factory, health, interceptors, shutdown.

A service is `create_server(settings, deps) -> ServiceServer` (built with `build_server`) plus a
`main()` that calls `serve_forever(lambda s: create_server(s, deps), Settings())`. Servicers raise
the errors below; the server maps them to statuses and logs one line per RPC. A service's
`autoperi serve <name>` command takes the shared options of `svc_kit.cli_options` and builds its
settings with `settings_from_options`. Messages to clients withhold host paths: a value the client
sent through `shown_value`, text from elsewhere through `public_text`.

Security (off by default): a server's settings turn on TLS (`tls_cert_file`, `tls_key_file`,
`tls_client_ca_file` for client certificates) and bearer tokens (`auth_tokens_file`); clients
open every channel with `open_channel` / `open_aio_channel`, whose `ClientSecurity` comes from
AUTOPERI_TLS_CA_FILE, AUTOPERI_AUTH_TOKEN, ... (svc_kit._channels). A server that cannot serve TLS
itself (Ray Serve's gRPC proxy) sits behind `build_relay`, a TLS-terminating relay.
"""

from svc_kit._channels import ClientSecurity, open_aio_channel, open_channel
from svc_kit._deadline import check_deadline, time_remaining
from svc_kit._errors import (
    Conflict,
    DeadlineExceeded,
    FailedPrecondition,
    InvalidInput,
    NotFound,
    ServiceError,
    TooLarge,
    Unauthenticated,
    Unavailable,
)
from svc_kit._lazy import lazy_exports
from svc_kit._lifecycle import serve, serve_forever
from svc_kit._logging import JsonFormatter, configure_logging
from svc_kit._redact import PATH_MARK, WITHHELD, is_path_like, public_text, shown_value
from svc_kit._relay import build_relay, relayed_methods
from svc_kit._security import BearerTokens
from svc_kit._server import ServiceServer, build_server
from svc_kit._settings import ServiceSettings, service_config, settings_from_options
from svc_kit._workers import Worker, WorkerPool

__all__ = [
    "PATH_MARK",
    "WITHHELD",
    "BearerTokens",
    "ClientSecurity",
    "Conflict",
    "DeadlineExceeded",
    "FailedPrecondition",
    "InvalidInput",
    "JsonFormatter",
    "NotFound",
    "ServiceError",
    "ServiceServer",
    "ServiceSettings",
    "TooLarge",
    "Unauthenticated",
    "Unavailable",
    "Worker",
    "WorkerPool",
    "build_relay",
    "build_server",
    "check_deadline",
    "configure_logging",
    "is_path_like",
    "lazy_exports",
    "open_aio_channel",
    "open_channel",
    "public_text",
    "relayed_methods",
    "serve",
    "serve_forever",
    "service_config",
    "settings_from_options",
    "shown_value",
    "time_remaining",
]
