"""Typed client of the sampler (for other services, the active-learning loop, scripts).

Every call sends the Serve `("application", name)` metadata and the client's deadline as
`autoperi-timeout-s` (Serve's proxy does not forward gRPC deadlines to the deployment), and sets
the same gRPC timeout, so work that cannot be delivered in time is not started. Channels are
secured as `security` says (default: the AUTOPERI_TLS_* / AUTOPERI_AUTH_TOKEN variables,
`svc_kit.open_channel`); a sampler with TLS settings serves TLS through its relay, one without
is plaintext (`security.without_tls()` where the environment asks for TLS elsewhere).

    crystals = sample("127.0.0.1:50064", "SrTiO3", n=4, steps=10, seed=0)
    spec = de_novo_spec(100, elements=("Li", "Fe", "P", "O"), required=("Li",), space_group=62)
    crystals = sample_spec("127.0.0.1:50064", spec)
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from autoperi.crystal.v1 import crystal_pb2
from autoperi.sampler.v1 import sampler_pb2, sampler_pb2_grpc
from pymatgen.core import Composition
from svc_kit import ClientSecurity, open_channel
from xtal import Crystal, convert

APPLICATION = "sampler"
TIMEOUT_METADATA = "autoperi-timeout-s"
CHANNEL_OPTIONS = [("grpc.max_receive_message_length", 256 << 20)]  # large replies
SAMPLERS = {
    "": sampler_pb2.SAMPLER_KIND_UNSPECIFIED,
    "euler": sampler_pb2.SAMPLER_KIND_EULER,
    "heun": sampler_pb2.SAMPLER_KIND_HEUN,
}


def metadata(application: str = APPLICATION, timeout: float | None = None) -> list[tuple]:
    """Call metadata: the Serve application and, with a timeout, the relative deadline."""
    md = [("application", application)]
    if timeout is not None:
        md.append((TIMEOUT_METADATA, f"{timeout:.3f}"))
    return md


def composition_proto(composition: str | Mapping[str, int]) -> crystal_pb2.Composition:
    """A Composition message of a formula ("SrTiO3") or {symbol: count} (whole counts)."""
    amounts = composition if isinstance(composition, Mapping) else _amounts(composition)
    return crystal_pb2.Composition(
        components=[crystal_pb2.Component(element=el, count=int(n)) for el, n in amounts.items()]
    )


def _amounts(formula: str) -> dict[str, int]:
    amounts = Composition(formula).get_el_amt_dict()
    if any(abs(v - round(v)) > 1e-6 for v in amounts.values()):
        raise ValueError(f"formula {formula!r} needs whole numbers of atoms")
    return {el: round(v) for el, v in amounts.items()}


def csp_spec(
    composition: str | Mapping[str, int],
    n: int,
    steps: int = 0,
    seed: int | None = None,
    sampler: str = "",
    num_formula_units: int = 0,
    checkpoint_id: str = "",
) -> sampler_pb2.SampleSpec:
    """A CSP SampleSpec: `n` structures of `composition` x `num_formula_units` (0 means 1)."""
    task = sampler_pb2.CspTask(
        composition=composition_proto(composition), num_formula_units=num_formula_units
    )
    spec = sampler_pb2.SampleSpec(
        csp=task,
        num_samples=n,
        num_steps=steps,
        sampler=SAMPLERS[sampler],
        checkpoint_id=checkpoint_id,
    )
    if seed is not None:
        spec.seed = seed
    return spec


def de_novo_spec(
    n: int,
    elements: Sequence[str] = (),
    required: Sequence[str] = (),
    atoms: tuple[int, int] = (0, 0),
    space_group: int = 0,
    steps: int = 0,
    seed: int | None = None,
    sampler: str = "",
) -> sampler_pb2.SampleSpec:
    """A de novo SampleSpec: `n` crystals with elements among `elements` (symbols; empty: any),
    each of `required` in every one, `atoms` = (min, max) atoms per cell (0: unbounded) and,
    for a checkpoint that takes it, space group `space_group` (0: any)."""
    task = sampler_pb2.DeNovoTask(
        min_atoms=atoms[0], max_atoms=atoms[1], elements=list(elements),
        required_elements=list(required),
    )  # fmt: skip
    spec = sampler_pb2.SampleSpec(
        de_novo=task,
        num_samples=n,
        num_steps=steps,
        sampler=SAMPLERS[sampler],
        constraints=sampler_pb2.Constraints(space_group_number=space_group),
    )
    if seed is not None:
        spec.seed = seed
    return spec


def sample_spec(
    address: str,
    spec: sampler_pb2.SampleSpec,
    *,
    timeout: float = 300.0,
    application: str = APPLICATION,
    security: ClientSecurity | None = None,
) -> list[Crystal]:
    """The crystals of `spec` (e.g. `de_novo_spec(...)`) in one reply (raises grpc.RpcError:
    INVALID_ARGUMENT with the reason for a request the checkpoint cannot serve)."""
    with open_channel(address, security, CHANNEL_OPTIONS) as channel:
        stub = sampler_pb2_grpc.SamplerServiceStub(channel)
        reply = stub.Sample(
            sampler_pb2.SampleRequest(spec=spec),
            timeout=timeout,
            metadata=metadata(application, timeout),
        )
    return [convert.from_proto(c) for c in reply.crystals]


def sample(
    address: str,
    composition: str | Mapping[str, int],
    n: int,
    steps: int = 0,
    seed: int | None = None,
    *,
    sampler: str = "",
    num_formula_units: int = 0,
    timeout: float = 300.0,
    application: str = APPLICATION,
    security: ClientSecurity | None = None,
) -> list[Crystal]:
    """`n` crystals of `composition` from the sampler at `address` (raises grpc.RpcError)."""
    spec = csp_spec(composition, n, steps, seed, sampler, num_formula_units)
    return sample_spec(address, spec, timeout=timeout, application=application, security=security)


def sample_stream(
    address: str,
    spec: sampler_pb2.SampleSpec,
    *,
    timeout: float = 300.0,
    application: str = APPLICATION,
    security: ClientSecurity | None = None,
) -> Iterator[list[Crystal]]:
    """The crystals of `spec`, one list per streamed message as the server completes them."""
    with open_channel(address, security, CHANNEL_OPTIONS) as channel:
        stub = sampler_pb2_grpc.SamplerServiceStub(channel)
        replies = stub.SampleStream(
            sampler_pb2.SampleStreamRequest(spec=spec),
            timeout=timeout,
            metadata=metadata(application, timeout),
        )
        for reply in replies:
            yield [convert.from_proto(c) for c in reply.crystals]


def sampler_info(
    address: str,
    *,
    timeout: float = 30.0,
    application: str = APPLICATION,
    security: ClientSecurity | None = None,
) -> sampler_pb2.GetSamplerInfoResponse:
    """What the sampler at `address` serves."""
    with open_channel(address, security, CHANNEL_OPTIONS) as channel:
        stub = sampler_pb2_grpc.SamplerServiceStub(channel)
        return stub.GetSamplerInfo(
            sampler_pb2.GetSamplerInfoRequest(), timeout=timeout, metadata=metadata(application)
        )
