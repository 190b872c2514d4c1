"""The sampler over Serve's real gRPC proxy: samples, seeds, streams, errors, overload, health;
de novo from the Perov-5 dng checkpoint as a second app on the same proxy (`TestDeNovo`)."""

import time
from collections import Counter
from pathlib import Path

import grpc
import numpy as np
import pytest
from autoperi.sampler.v1 import sampler_pb2, sampler_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from xtal import ValidationLimits, convert

from sampler_svc import client

SRTIO3 = [8, 8, 8, 22, 38]
DNG = Path(__file__).resolve().parents[3] / "checkpoints" / "perov_5_dng"
DNG_APP = "sampler_dng"


RPCS = ("Sample", "SampleStream")  # every bad request is sent both ways


def _sample(stub, spec, timeout=60.0, server_timeout=None, rpc="Sample", app=client.APPLICATION):
    """The reply of Sample, or the list of SampleStream messages (rpc="SampleStream")."""
    md = client.metadata(app, timeout=server_timeout)
    if rpc == "SampleStream":
        request = sampler_pb2.SampleStreamRequest(spec=spec)
        return list(stub.SampleStream(request, timeout=timeout, metadata=md))
    return stub.Sample(sampler_pb2.SampleRequest(spec=spec), timeout=timeout, metadata=md)


def _error(stub, spec, **kwargs) -> grpc.RpcError:
    """The error of a call that must fail (a stream must fail, not end OK)."""
    with pytest.raises(grpc.RpcError) as info:
        _sample(stub, spec, **kwargs)
    return info.value


def test_sample_returns_valid_crystals_of_the_composition(stub, sampler_address):
    reply = _sample(stub, client.csp_spec("SrTiO3", 5, seed=3))  # default: Heun, 50 steps
    info = client.sampler_info(sampler_address)
    crystals = [convert.from_proto(c) for c in reply.crystals]
    assert len(crystals) == 5 and reply.seed == 3 and reply.nfe == 100
    assert reply.checkpoint_id == info.checkpoint_id
    assert len({c.id for c in crystals}) == 5
    for crystal in crystals:
        assert sorted(crystal.atomic_numbers.tolist()) == SRTIO3
        crystal.validate()
        assert crystal.provenance.source == "sampler"
        assert crystal.provenance.generator == info.checkpoint_id


def test_formula_units_multiply_the_cell(sampler_address):
    crystals = client.sample(sampler_address, "BaTiO3", 2, steps=4, seed=1) + client.sample(
        sampler_address, "BaTiO3", 1, steps=4, seed=1, num_formula_units=2
    )
    assert [c.num_atoms for c in crystals] == [5, 5, 10]


def test_same_seed_same_crystals(sampler_address):
    first, again, other = (
        client.sample(sampler_address, "CaTiO3", 3, steps=5, seed=seed) for seed in (42, 42, 43)
    )
    for a, b in zip(first, again, strict=True):
        assert a.id == b.id
        np.testing.assert_allclose(a.lattice, b.lattice, atol=1e-5)
        np.testing.assert_allclose(a.frac_coords, b.frac_coords, atol=1e-5)
    assert not np.allclose(first[0].lattice, other[0].lattice)


def test_stream_returns_all_samples_in_chunks(stub):
    spec = client.csp_spec("KNbO3", 20, steps=3, seed=9)
    replies = list(
        stub.SampleStream(
            sampler_pb2.SampleStreamRequest(spec=spec), timeout=60, metadata=client.metadata()
        )
    )
    assert len(replies) == 3  # chunk_samples = 8
    assert [r.num_done for r in replies] == [8, 16, 20]
    assert {r.num_total for r in replies} == {20}
    ids = [c.id for r in replies for c in r.crystals]
    assert sorted(int(i.rsplit("-", 1)[1]) for i in ids) == list(range(20))


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        (client.csp_spec({"Xx": 1, "O": 3}, 2), "unknown elements: 'Xx'"),
        (client.csp_spec({}, 2), "empty composition"),
        (client.csp_spec("SrTiO3", 0), "num_samples must be in 1..64, got 0"),
        (client.csp_spec("SrTiO3", 65), "num_samples must be in 1..64, got 65"),
        (client.csp_spec({"Sr": 60, "O": 60}, 1), "more than 100 atoms"),
        (client.csp_spec("SrTiO3", 1, num_formula_units=21), "more than 100 atoms"),
        (
            sampler_pb2.SampleSpec(
                csp=sampler_pb2.CspTask(composition=client.composition_proto("SrTiO3")),
                num_samples=1,
                sampler=sampler_pb2.SAMPLER_KIND_DDPM,
            ),
            "sampler 'ddpm' is not supported",
        ),
        (
            sampler_pb2.SampleSpec(de_novo=sampler_pb2.DeNovoTask(), num_samples=1),
            "does not support de novo",
        ),
        (sampler_pb2.SampleSpec(num_samples=1), "spec needs a task"),
        (client.csp_spec("SrTiO3", 10**7), "num_samples must be in 1..64, got 10000000"),
        (client.csp_spec({"Sr": 100, "Ti": 100, "O": 300}, 1), "more than 100 atoms"),
    ],
    ids=[
        "element", "empty", "zero", "too-many", "big-cell", "big-z", "ddpm", "de-novo", "task",
        "ten-million", "500-atoms",
    ],
)  # fmt: skip
@pytest.mark.parametrize("rpc", RPCS)
def test_invalid_argument_with_reason(stub, spec, reason, rpc):
    error = _error(stub, spec, rpc=rpc)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert reason in error.details()
    assert "Traceback" not in error.details()


def test_min_distance_regenerates_or_gives_up(stub):
    spec = client.csp_spec("SrTiO3", 8, steps=3, seed=4, sampler="euler")
    spec.constraints.min_interatomic_distance = 1.8
    spec.constraints.max_attempts = 2
    reply = _sample(stub, spec)
    crystals = [convert.from_proto(c) for c in reply.crystals]
    assert len(crystals) + reply.num_failed == 8
    assert reply.nfe > 3  # rejected samples were regenerated
    for crystal in crystals:
        crystal.validate(ValidationLimits(min_distance=1.8))
    indices = [int(c.id.rsplit("-", 1)[1]) for c in crystals]
    assert indices == sorted(indices)


@pytest.mark.parametrize("rpc", RPCS)
def test_unknown_checkpoint_is_not_found(stub, rpc):
    spec = client.csp_spec("SrTiO3", 1, checkpoint_id="no-such-checkpoint")
    error = _error(stub, spec, rpc=rpc)
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert "no-such-checkpoint" in error.details()


CHECKPOINT = Path(__file__).resolve().parents[3] / "checkpoints" / "perov_5_csp"
CHECKPOINT_PATHS = {  # case id: a checkpoint_id naming a place, not an id
    "absolute": "/etc",
    "relative": "../x",
    "file-uri": "file:///etc/passwd",
    "served-dir": str(CHECKPOINT),
    "other-dir": str(DNG),
    "repo-relative": "checkpoints/perov_5_dng",
    "backslash": "..\\..\\etc",
}


@pytest.mark.parametrize("case", CHECKPOINT_PATHS)
@pytest.mark.parametrize("rpc", RPCS)
def test_a_checkpoint_named_by_path_is_invalid_argument_and_never_echoed(stub, tmp_path, case, rpc):
    spec = client.csp_spec("SrTiO3", 1, checkpoint_id=CHECKPOINT_PATHS[case])
    error = _error(stub, spec, rpc=rpc)
    details = error.details()
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, details
    assert "checkpoint_id (path-like value, not repeated) is not a checkpoint id" in details
    for host_path in (str(CHECKPOINT.parent), str(tmp_path), "/etc", "perov_5", "file:"):
        assert host_path not in details, details


@pytest.mark.parametrize("rpc", RPCS)
def test_a_one_ms_deadline_is_deadline_exceeded(stub, rpc):
    """The server's deadline (the client's 1 ms, sent as metadata) passes before any sample."""
    spec = client.csp_spec("SrTiO3", 16, steps=20, seed=1)
    error = _error(stub, spec, server_timeout=0.001, rpc=rpc)
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "deadline passed" in error.details()


def test_info_says_csp_only(sampler_address):
    info = client.sampler_info(sampler_address)
    assert info.supports_csp and not info.supports_de_novo
    assert info.max_samples_per_request == 64 and info.max_atoms == 100
    assert sampler_pb2.SAMPLER_KIND_EULER in info.samplers
    assert sampler_pb2.SAMPLER_KIND_DDPM not in info.samplers


@pytest.mark.parametrize("rpc", RPCS)
def test_server_honours_the_client_deadline(stub, rpc):
    """A request whose deadline passes while it waits behind a running batch is not run."""
    busy = client.csp_spec("SrTiO3", 32, steps=30, seed=1, sampler="euler")
    blocker = stub.Sample.future(
        sampler_pb2.SampleRequest(spec=busy), timeout=60, metadata=client.metadata()
    )
    spec = client.csp_spec("SrTiO3", 2, steps=2)
    error = _error(stub, spec, timeout=60.0, server_timeout=0.3, rpc=rpc)
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "deadline passed" in error.details()
    assert len(blocker.result().crystals) == 32


def test_a_deadline_passing_mid_stream_fails_the_stream_after_its_messages(stub):
    """Chunks already sent, then DEADLINE_EXCEEDED: never a truncated stream that ends OK.

    100-atom cells: two chunks of 8 per batch, so 64 samples are 4 batches in turn; the deadline
    is 2.5x the time of one batch (measured here), within the 2nd to 4th batch."""
    cell = {"Sr": 20, "Ti": 20, "O": 60}
    start = time.monotonic()
    _sample(stub, client.csp_spec(cell, 16, steps=10, seed=1, sampler="euler"))  # one batch
    one_batch = time.monotonic() - start
    spec = client.csp_spec(cell, 64, steps=10, seed=2, sampler="euler")
    md = client.metadata(timeout=2.5 * one_batch)
    stream = stub.SampleStream(sampler_pb2.SampleStreamRequest(spec=spec), 60, metadata=md)
    replies = []
    with pytest.raises(grpc.RpcError) as info:
        replies.extend(stream)
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED, info.value.details()
    assert "deadline passed" in info.value.details()
    assert 1 <= len(replies) < 8 and replies[-1].num_done < 64


def test_overload_gets_resource_exhausted(stub):
    spec = client.csp_spec("SrTiO3", 16, steps=8, seed=2)
    request = sampler_pb2.SampleRequest(spec=spec)
    calls = [
        stub.Sample.future(request, timeout=120, metadata=client.metadata()) for _ in range(12)
    ]
    outcomes = Counter()
    for call in calls:
        try:
            outcomes[len(call.result().crystals)] += 1
        except grpc.RpcError as error:
            outcomes[error.code()] += 1
    assert outcomes[grpc.StatusCode.RESOURCE_EXHAUSTED] >= 1
    assert outcomes[16] >= 2  # the 2 a replica may hold
    assert sum(outcomes.values()) == 12
    assert set(outcomes) <= {16, grpc.StatusCode.RESOURCE_EXHAUSTED}


def test_health(sampler_address):
    with grpc.insecure_channel(sampler_address) as channel:
        check = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=30
        )
        healthz = channel.unary_unary("/ray.serve.RayServeAPIService/Healthz")(b"", timeout=30)
    assert check.status == health_pb2.HealthCheckResponse.SERVING
    assert b"success" in healthz


@pytest.fixture(scope="class")
def dng_stub(sampler_address):
    """A stub for a second app serving checkpoints/perov_5_dng on the module's proxy (calls need
    the application metadata DNG_APP); deleted after the class, so the other tests see one app."""
    from ray import serve

    from sampler_svc import SamplerSettings, deploy

    settings = SamplerSettings(
        app_name=DNG_APP, log_level="WARNING", max_samples_per_request=64, chunk_samples=8
    )
    deploy(DNG, int(sampler_address.rsplit(":", 1)[1]), None, settings)
    try:
        with grpc.insecure_channel(sampler_address) as channel:
            yield sampler_pb2_grpc.SamplerServiceStub(channel)
    finally:
        serve.delete(DNG_APP)


def _de_novo(n: int, seed: int | None = None, lo: int = 0, hi: int = 0, elements=(), steps=3):
    task = sampler_pb2.DeNovoTask(min_atoms=lo, max_atoms=hi, elements=list(elements))
    spec = sampler_pb2.SampleSpec(de_novo=task, num_samples=n, num_steps=steps)
    if seed is not None:
        spec.seed = seed
    return spec


class TestDeNovo:
    """A task: dng checkpoint behind the same proxy: de novo only."""

    @staticmethod
    def _sample(stub, spec) -> sampler_pb2.SampleResponse:
        request = sampler_pb2.SampleRequest(spec=spec)
        return stub.Sample(request, timeout=60, metadata=client.metadata(DNG_APP))

    def test_info_says_de_novo_only(self, dng_stub):
        info = dng_stub.GetSamplerInfo(
            sampler_pb2.GetSamplerInfoRequest(), timeout=30, metadata=client.metadata(DNG_APP)
        )
        assert info.supports_de_novo and not info.supports_csp
        assert info.default_sampler == sampler_pb2.SAMPLER_KIND_EULER
        assert info.default_num_steps == 20

    def test_sample_is_reproducible_and_honours_the_elements(self, dng_stub):
        spec = _de_novo(6, seed=5, elements=("Ba", "Ti", "O"))
        first, again = (self._sample(dng_stub, spec) for _ in "ab")
        assert first.seed == 5 and first.nfe == 3 and len(first.crystals) == 6
        crystals = [convert.from_proto(c) for c in first.crystals]
        for crystal, other in zip(crystals, again.crystals, strict=True):
            other = convert.from_proto(other)
            assert crystal.id == other.id
            np.testing.assert_array_equal(crystal.atomic_numbers, other.atomic_numbers)
            np.testing.assert_allclose(crystal.lattice, other.lattice, atol=1e-6)
            np.testing.assert_allclose(crystal.frac_coords, other.frac_coords, atol=1e-6)
            assert crystal.num_atoms == 5  # every Perov-5 training cell has 5 atoms
            assert set(crystal.atomic_numbers.tolist()) <= {8, 22, 56}
            assert crystal.provenance.generator == first.checkpoint_id

    def test_stream_returns_all_samples(self, dng_stub):
        request = sampler_pb2.SampleStreamRequest(spec=_de_novo(10, seed=2, lo=5, hi=5))
        replies = list(
            dng_stub.SampleStream(request, timeout=60, metadata=client.metadata(DNG_APP))
        )
        assert sorted(len(r.crystals) for r in replies) == [2, 8]  # chunk_samples = 8
        assert replies[-1].num_done == 10 and {r.num_total for r in replies} == {10}
        crystals = [convert.from_proto(c) for r in replies for c in r.crystals]
        assert sorted(int(c.id.rsplit("-", 1)[1]) for c in crystals) == list(range(10))
        assert {c.num_atoms for c in crystals} == {5}

    @pytest.mark.parametrize(
        ("spec", "reason"),
        [
            (client.csp_spec("SrTiO3", 1), "does not support CSP"),
            (_de_novo(1, lo=6), "no training crystal has 6..100 atoms"),
            (_de_novo(1, lo=1, hi=4), "no training crystal has 1..4 atoms"),
            (_de_novo(1, lo=5, hi=4), "need 1 <= min_atoms <= max_atoms"),
            (_de_novo(1, elements=("Ba", "Xx")), "unknown symbols: 'Xx'"),
            (_de_novo(1, elements=("Og",)), "Og are beyond Z = 100"),
        ],
        ids=["csp", "above", "below", "min-over-max", "element", "beyond-max-z"],
    )
    @pytest.mark.parametrize("rpc", RPCS)
    def test_invalid_argument_with_reason(self, dng_stub, spec, reason, rpc):
        error = _error(dng_stub, spec, rpc=rpc, app=DNG_APP)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert reason in error.details()
        assert "Traceback" not in error.details()
