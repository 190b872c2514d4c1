"""Proto <-> domain conversions of the sampler service (the only module reading its messages)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from autoperi.common.v1 import common_pb2
from autoperi.sampler.v1 import sampler_pb2
from xtal import Crystal, convert

from sampler_svc._engine import DeNovoSpec, EngineInfo
from sampler_svc._jobs import Job, Limits, SampleSpecIn

TIMEOUT_METADATA = "autoperi-timeout-s"  # the client's deadline, seconds from sending

_KINDS = {
    sampler_pb2.SAMPLER_KIND_UNSPECIFIED: "",
    sampler_pb2.SAMPLER_KIND_EULER: "euler",
    sampler_pb2.SAMPLER_KIND_HEUN: "heun",
    sampler_pb2.SAMPLER_KIND_DDPM: "ddpm",
    sampler_pb2.SAMPLER_KIND_DDIM: "ddim",
    sampler_pb2.SAMPLER_KIND_PREDICTOR_CORRECTOR: "predictor_corrector",
    sampler_pb2.SAMPLER_KIND_TEMPLATE: "template",
    sampler_pb2.SAMPLER_KIND_ION_EXCHANGE: "ion_exchange",
}
_KIND_OF = {name: kind for kind, name in _KINDS.items() if name}


def spec_in(spec: sampler_pb2.SampleSpec, timeout_s: float | None) -> SampleSpecIn:
    """The domain view of a SampleSpec (unknown sampler enum values keep their number)."""
    task = spec.WhichOneof("task") or ""
    de_novo = None
    if task == "de_novo":
        d = spec.de_novo
        de_novo = DeNovoSpec(
            d.min_atoms, d.max_atoms, tuple(d.elements), tuple(d.required_elements)
        )
    c = spec.constraints
    return SampleSpecIn(
        task=task,
        components=tuple((x.element, x.count) for x in spec.csp.composition.components),
        num_formula_units=spec.csp.num_formula_units,
        de_novo=de_novo,
        num_samples=spec.num_samples,
        seed=spec.seed if spec.HasField("seed") else None,
        num_steps=spec.num_steps,
        sampler=_KINDS.get(spec.sampler, f"sampler kind {int(spec.sampler)}"),
        checkpoint_id=spec.checkpoint_id,
        min_interatomic_distance=c.min_interatomic_distance,
        max_attempts=c.max_attempts,
        space_group_number=c.space_group_number,
        target_properties=tuple(c.target_properties),
        timeout_s=timeout_s,
    )


def timeout_from_metadata(metadata: Sequence[tuple[str, str]]) -> float | None:
    """The client's relative deadline sent as `autoperi-timeout-s` metadata (None if absent)."""
    for key, value in metadata:
        if key == TIMEOUT_METADATA:
            try:
                return max(0.0, float(value))
            except ValueError:
                return None
    return None


def timing(queued: float, compute: float, total: float) -> common_pb2.Timing:
    """A Timing message from seconds."""
    out = common_pb2.Timing()
    out.queued.FromNanoseconds(int(queued * 1e9))
    out.compute.FromNanoseconds(int(compute * 1e9))
    out.total.FromNanoseconds(int(total * 1e9))
    return out


@dataclasses.dataclass(frozen=True)
class Tally:
    """Samples kept, given up on and generated (regenerations included) so far."""

    kept: int
    failed: int
    generated: int

    def nfe(self, job: Job) -> int:
        """Network evaluations per completed sample, regenerations included."""
        return math.ceil(job.nfe * self.generated / max(1, self.kept + self.failed))


def sample_response(
    job: Job, crystals: Sequence[Crystal], tally: Tally, seconds: tuple[float, float, float]
) -> sampler_pb2.SampleResponse:
    """The reply of Sample; `seconds` = (queued, compute, total)."""
    return sampler_pb2.SampleResponse(
        crystals=[convert.to_proto(c) for c in crystals],
        nfe=tally.nfe(job),
        seed=job.seed,
        checkpoint_id=job.checkpoint_id,
        num_failed=tally.failed,
        timing=timing(*seconds),
    )


def stream_response(
    job: Job, crystals: Sequence[Crystal], tally: Tally, seconds: tuple[float, float, float]
) -> sampler_pb2.SampleStreamResponse:
    """One message of SampleStream (`crystals`: the ones completed since the last message)."""
    return sampler_pb2.SampleStreamResponse(
        crystals=[convert.to_proto(c) for c in crystals],
        num_done=tally.kept + tally.failed,
        num_total=job.num_samples,
        nfe=tally.nfe(job),
        seed=job.seed,
        checkpoint_id=job.checkpoint_id,
        num_failed=tally.failed,
        timing=timing(*seconds),
    )


def info_response(info: EngineInfo, limits: Limits) -> sampler_pb2.GetSamplerInfoResponse:
    """The reply of GetSamplerInfo."""
    return sampler_pb2.GetSamplerInfoResponse(
        checkpoint_id=info.checkpoint_id,
        available_checkpoint_ids=[info.checkpoint_id],
        atomic_numbers=list(range(1, info.max_z + 1)),
        max_atoms=limits.max_atoms,
        max_samples_per_request=limits.max_samples,
        samplers=[_KIND_OF[s] for s in info.samplers],
        default_sampler=_KIND_OF[info.default_sampler],
        default_num_steps=info.default_steps,
        supports_csp=info.supports_csp,
        supports_de_novo=info.supports_de_novo,
        conditions=list(info.conditions),
    )
