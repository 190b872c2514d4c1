"""Container health check: exit 0 when the gRPC server at ADDRESS reports SERVING.

    python infra/docker/healthcheck.py 127.0.0.1:50061
    python infra/docker/healthcheck.py --port-env AUTOPERI_INGEST_PORT
    python infra/docker/healthcheck.py 127.0.0.1:50064 --metadata application=sampler

`--port-env NAME` checks 127.0.0.1 on the port in the environment variable NAME (the service's
own port setting), so a HEALTHCHECK needs no shell to follow a changed port.

Calls the standard grpc.health.v1 Health/Check (overall status, or --service NAME); exits 0 on
SERVING, 1 otherwise (NOT_SERVING, unreachable, timeout), printing one line. Every AutoPeri server
answers it (svc_kit), and so does the sampler's Ray Serve gRPC proxy, which routes it to the app
named by the `application` metadata. Needs only grpcio and grpcio-health-checking.

TLS: with AUTOPERI_TLS_CA_FILE set (the CA of the servers' certificates, as for every AutoPeri
client, svc_kit.open_channel) the probe dials TLS, presenting AUTOPERI_TLS_CLIENT_CERT_FILE and
AUTOPERI_TLS_CLIENT_KEY_FILE when the server requires client certificates. Health needs no
bearer token.
"""

from __future__ import annotations

import argparse
import os
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def check(
    address: str, service: str = "", metadata: tuple[tuple[str, str], ...] = (), timeout=3.0
) -> tuple[bool, str]:
    """(healthy, one-line reason) of the server at `address`."""
    try:
        with _channel(address) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout, metadata=metadata
            )
    except grpc.RpcError as exc:
        return False, f"{address}: {exc.code().name}: {exc.details()}"
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    return reply.status == health_pb2.HealthCheckResponse.SERVING, f"{address}: {status}"


def _channel(address: str) -> grpc.Channel:
    """TLS when AUTOPERI_TLS_CA_FILE is set (with the client certificate, if any), else not."""
    ca = os.environ.get("AUTOPERI_TLS_CA_FILE")
    if not ca:
        return grpc.insecure_channel(address)
    cert, key = (os.environ.get(f"AUTOPERI_TLS_CLIENT_{k}_FILE") for k in ("CERT", "KEY"))
    credentials = grpc.ssl_channel_credentials(
        root_certificates=_read(ca), private_key=_read(key), certificate_chain=_read(cert)
    )
    return grpc.secure_channel(address, credentials)


def _read(path: str | None) -> bytes | None:
    if not path:
        return None
    with open(path, "rb") as file:
        return file.read()


def _pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.lower(), value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("address", nargs="?", help="host:port of the gRPC server")
    parser.add_argument("--port-env", metavar="NAME", help="check 127.0.0.1:$NAME instead")
    parser.add_argument("--service", default="", help="service name ('' = the whole server)")
    parser.add_argument("--metadata", type=_pair, action="append", default=[], metavar="K=V")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds")
    args = parser.parse_args(argv)
    address = args.address
    if args.port_env:
        port = os.environ.get(args.port_env, "")
        if not port.isdigit():
            parser.error(f"{args.port_env} is not set to a port number ({port!r})")
        address = f"127.0.0.1:{port}"
    if not address:
        parser.error("give ADDRESS or --port-env NAME")
    healthy, reason = check(address, args.service, tuple(args.metadata), args.timeout)
    print(reason)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
