"""Bearer tokens on the sampler, through Serve's real gRPC proxy: the deployment refuses Sample,
SampleStream and GetSamplerInfo without an accepted token (UNAUTHENTICATED) and answers with one;
the health Check needs none."""

import grpc
import pytest
from autoperi.sampler.v1 import sampler_pb2, sampler_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from svc_kit import ClientSecurity, open_channel

from sampler_svc import client
from sampler_svc.conftest import CHECKPOINT

pytestmark = pytest.mark.slow  # a Serve app of its own (~30 s on 2 cores)
TOKEN = "sampler-test-token"


@pytest.fixture(scope="module")
def address(ray_session, tmp_path_factory):
    from sampler_svc import SamplerSettings
    from sampler_svc.testing import serving_sampler

    tokens = tmp_path_factory.mktemp("auth") / "tokens"
    tokens.write_text(f"{TOKEN}\n")
    settings = SamplerSettings(app_name="sampler", log_level="WARNING", auth_tokens_file=tokens)
    with serving_sampler(CHECKPOINT, settings) as address:
        yield address


def _refused(call) -> str:
    with pytest.raises(grpc.RpcError) as info:
        call()
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED, info.value.details()
    return info.value.details()


@pytest.mark.parametrize("token", [None, "wrong"])
def test_calls_without_an_accepted_token_are_unauthenticated(address, token):
    security = ClientSecurity(auth_token=token).without_tls()
    spec = client.csp_spec("SrTiO3", 1, steps=2, seed=0)
    details = _refused(lambda: client.sample(address, "SrTiO3", 1, steps=2, security=security))
    assert details == "missing or invalid bearer token"
    _refused(lambda: list(client.sample_stream(address, spec, security=security)))
    _refused(lambda: client.sampler_info(address, security=security))


def test_calls_with_the_token_are_answered_and_health_needs_none(address):
    security = ClientSecurity(auth_token=TOKEN).without_tls()
    crystals = client.sample(address, "SrTiO3", 2, steps=2, seed=0, security=security)
    assert [c.formula for c in crystals] == ["SrTiO3", "SrTiO3"]
    assert client.sampler_info(address, security=security).checkpoint_id
    with open_channel(address, ClientSecurity(auth_token=None).without_tls()) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), metadata=client.metadata(), timeout=10
        )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        stub = sampler_pb2_grpc.SamplerServiceStub(channel)
        request = sampler_pb2.GetSamplerInfoRequest()
        _refused(lambda: stub.GetSamplerInfo(request, metadata=client.metadata(), timeout=10))
