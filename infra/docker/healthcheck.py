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
        with grpc.insecure_channel(address) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout, metadata=metadata
            )
    except grpc.RpcError as exc:
        return False, f"{address}: {exc.code().name}: {exc.details()}"
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    return reply.status == health_pb2.HealthCheckResponse.SERVING, f"{address}: {status}"


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
