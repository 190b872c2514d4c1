"""Fixtures of the sampler tests: one Serve app per test module on the session's Ray."""

from pathlib import Path

import grpc
import pytest
from autoperi.sampler.v1 import sampler_pb2_grpc

CHECKPOINT = Path(__file__).resolve().parents[3] / "checkpoints" / "perov_5_csp"


@pytest.fixture(scope="module")
def sampler_address(ray_session):
    """The gRPC address of a sampler app with small admission limits (2 running + 2 queued)."""
    from sampler_svc import SamplerSettings
    from sampler_svc.testing import serving_sampler

    settings = SamplerSettings(
        app_name="sampler",
        max_ongoing_requests=2,
        max_queued_requests=2,
        log_level="WARNING",
        max_samples_per_request=64,
        chunk_samples=8,
        batch_wait_timeout_s=0.01,
    )
    with serving_sampler(CHECKPOINT, settings) as address:
        yield address


@pytest.fixture
def stub(sampler_address):
    """A blocking SamplerService stub connected to the module's app."""
    with grpc.insecure_channel(sampler_address) as channel:
        yield sampler_pb2_grpc.SamplerServiceStub(channel)
