"""Fixtures of the sampler tests: one Serve app per test module on the session's Ray."""

import socket
from pathlib import Path

import grpc
import pytest
from autoperi.sampler.v1 import sampler_pb2_grpc

CHECKPOINT = Path(__file__).resolve().parents[3] / "checkpoints" / "perov_5_csp"


def free_port() -> int:
    """A TCP port that was free a moment ago (Serve's gRPC proxy cannot bind port 0)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def sampler_address(ray_session):
    """The gRPC address of a sampler app with small admission limits (2 running + 2 queued).

    Serve runs one gRPC proxy whose servicers are fixed when Serve starts, so a Serve left
    running by another module is shut down first, and this one is shut down at the end.
    """
    from ray import serve

    from sampler_svc import SamplerSettings, deploy

    serve.shutdown()
    settings = SamplerSettings(
        app_name="sampler",
        max_ongoing_requests=2,
        max_queued_requests=2,
        log_level="WARNING",
        max_samples_per_request=64,
        chunk_samples=8,
        batch_wait_timeout_s=0.01,
    )
    port = free_port()
    deploy(CHECKPOINT, port, free_port(), settings)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        serve.delete(settings.app_name)
        serve.shutdown()


@pytest.fixture
def stub(sampler_address):
    """A blocking SamplerService stub connected to the module's app."""
    with grpc.insecure_channel(sampler_address) as channel:
        yield sampler_pb2_grpc.SamplerServiceStub(channel)
