"""Conditioned de novo requests over Serve's real gRPC proxy: the ion-exchange baseline
(checkpoints/mp_20_ion_exchange) honours allowed and required elements, atom range and space
group; the Perov-5 flow (a second app) honours required elements and refuses a space group;
impossible combinations are INVALID_ARGUMENT with the reason, unary and stream alike."""

from pathlib import Path

import grpc
import pytest
from autoperi.sampler.v1 import sampler_pb2, sampler_pb2_grpc
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer
from xtal import convert

from sampler_svc import client

ROOT = Path(__file__).resolve().parents[3]
ION_EXCHANGE = ROOT / "checkpoints" / "mp_20_ion_exchange"
FLOW = ROOT / "checkpoints" / "perov_5_dng"
FLOW_APP = "sampler_flow_dng"
RPCS = ("Sample", "SampleStream")


@pytest.fixture(scope="module")
def address(ray_session):
    """A proxy serving the ion-exchange checkpoint (app "sampler") and the Perov-5 flow."""
    from ray import serve

    from sampler_svc import SamplerSettings, deploy
    from sampler_svc.testing import serving_sampler

    settings = SamplerSettings(
        app_name="sampler", log_level="WARNING", max_samples_per_request=64, chunk_samples=8
    )
    with serving_sampler(ION_EXCHANGE, settings) as address:
        flow = SamplerSettings(app_name=FLOW_APP, log_level="WARNING", chunk_samples=8)
        deploy(FLOW, int(address.rsplit(":", 1)[1]), None, flow)
        try:
            yield address
        finally:
            serve.delete(FLOW_APP)


@pytest.fixture
def stub(address):
    with grpc.insecure_channel(address) as channel:
        yield sampler_pb2_grpc.SamplerServiceStub(channel)


def _crystals(stub, spec, rpc="Sample", app=client.APPLICATION) -> list:
    md = client.metadata(app)
    if rpc == "SampleStream":
        replies = stub.SampleStream(sampler_pb2.SampleStreamRequest(spec=spec), 60, metadata=md)
        return [convert.from_proto(c) for r in replies for c in r.crystals]
    reply = stub.Sample(sampler_pb2.SampleRequest(spec=spec), timeout=60, metadata=md)
    return [convert.from_proto(c) for c in reply.crystals]


@pytest.mark.parametrize("rpc", RPCS)
def test_ion_exchange_honours_every_condition(stub, rpc):
    spec = client.de_novo_spec(
        20, ("Li", "Fe", "P", "O"), ("Li",), atoms=(4, 16), space_group=62, seed=3
    )
    crystals = _crystals(stub, spec, rpc)
    assert len(crystals) == 20
    for crystal in crystals:
        have = {site.symbol for site in crystal.to_pymatgen().species}
        assert "Li" in have and have <= {"Li", "Fe", "P", "O"}
        assert 4 <= crystal.num_atoms <= 16
        analyzer = SpacegroupAnalyzer(crystal.to_pymatgen(), symprec=0.1)
        assert analyzer.get_space_group_number() == 62


def test_info_lists_the_space_group_condition(stub):
    info = stub.GetSamplerInfo(
        sampler_pb2.GetSamplerInfoRequest(), timeout=30, metadata=client.metadata()
    )
    assert info.supports_de_novo and list(info.conditions) == ["space_group_number"]


def test_the_flow_holds_required_elements(stub):
    spec = client.de_novo_spec(6, ("Ba", "Ti", "O"), ("Ba", "Ti"), steps=3, seed=1)
    for crystal in _crystals(stub, spec, app=FLOW_APP):
        assert {56, 22} <= set(crystal.atomic_numbers.tolist()) <= {56, 22, 8}


BAD = {
    "not-a-subset": (
        client.de_novo_spec(1, ("Cu", "S"), ("Li",)),
        "required_elements Li are not among the elements",
    ),
    "unknown": (client.de_novo_spec(1, required=("Qq",)), "required_elements has unknown"),
    "too-many": (
        client.de_novo_spec(1, required=("Li", "Na", "K"), atoms=(1, 2)),
        "required_elements has 3 elements",
    ),
    "no-template": (
        client.de_novo_spec(1, ("Cu", "S"), space_group=230),
        "no template with 1-20 atoms is in space group 230",
    ),
    "unknown-group": (
        client.de_novo_spec(1, ("Cu", "S"), space_group=231),
        "constraints.space_group_number must be in 1..230",
    ),
    "no-exchange": (
        client.de_novo_spec(1, ("He",)),
        "can be ion-exchanged into elements He",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
@pytest.mark.parametrize("rpc", RPCS)
def test_impossible_requests_are_invalid_argument_with_the_reason(stub, case, rpc):
    spec, reason = BAD[case]
    _assert_invalid(stub, spec, reason, rpc, client.APPLICATION)


@pytest.mark.parametrize("rpc", RPCS)
def test_the_flow_refuses_a_space_group(stub, rpc):
    spec = client.de_novo_spec(1, ("Ba", "Ti", "O"), space_group=62, steps=2)
    _assert_invalid(stub, spec, "not conditioned on the space group", rpc, FLOW_APP)


def _assert_invalid(stub, spec, reason: str, rpc: str, app: str) -> None:
    with pytest.raises(grpc.RpcError) as info:
        _crystals(stub, spec, rpc, app)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert reason in info.value.details() and "Traceback" not in info.value.details()
