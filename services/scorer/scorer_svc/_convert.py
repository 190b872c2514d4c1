"""Proto <-> domain conversions of the scorer (the only module reading its messages)."""

import math
from collections.abc import Sequence

import numpy as np
from autoperi.common.v1 import common_pb2
from autoperi.crystal.v1 import crystal_pb2
from autoperi.scorer.v1 import scorer_pb2
from google.protobuf.duration_pb2 import Duration
from svc_kit import InvalidInput
from xtal import Crystal, CrystalError, ValidationLimits
from xtal.convert import from_proto, to_proto

from scorer_svc._model import (
    DEFAULT_FMAX,
    DEFAULT_MIN_DISTANCE,
    DEFAULT_SYMPREC,
    Reference,
    ScoreOptions,
    ScorerInfo,
    Scores,
)

#: Only the message's form is checked here (sites, elements); the numbers (NaN, range, volume)
#: are refused per crystal by the core (`ScorerCore.refusal`), so one bad crystal never fails
#: the request.
_FORM_ONLY = ValidationLimits(max_atoms=10**9, min_distance=0.0, min_volume=0.0)
_PER_CRYSTAL_CODES = {"small_volume", "non_finite", "out_of_range"}
_SYMMETRY_TO_PROTO = {
    "spglib": scorer_pb2.SYMMETRY_BACKEND_SPGLIB,
    "moyopy": scorer_pb2.SYMMETRY_BACKEND_MOYOPY,
    "none": scorer_pb2.SYMMETRY_BACKEND_NONE,
}
_SYMMETRY_FROM_PROTO = {v: k for k, v in _SYMMETRY_TO_PROTO.items()}
_SYMMETRY_FROM_PROTO[scorer_pb2.SYMMETRY_BACKEND_UNSPECIFIED] = "spglib"


def crystals_from_request(messages: Sequence[crystal_pb2.Crystal]) -> list[Crystal]:
    """The request's crystals; InvalidInput naming the first malformed message (no sites, an
    unset lattice, an atomic number outside 1..118). Crystals with NaN, infinite or huge numbers
    are returned: the core gives each its own error."""
    crystals = []
    for i, message in enumerate(messages):
        if not message.HasField("lattice"):
            raise InvalidInput(f"crystal {i} ({message.id!r}) has no lattice")
        try:
            crystal = from_proto(message)
            crystal.validate(_FORM_ONLY)
        except CrystalError as exc:
            if exc.code not in _PER_CRYSTAL_CODES:
                raise InvalidInput(f"crystal {i} ({message.id!r}) is malformed: {exc}") from None
        crystals.append(crystal)
    return crystals


def options_from_proto(message: scorer_pb2.ScoreOptions) -> ScoreOptions:
    """ScoreOptions with the proto's defaults for zero fields; InvalidInput for negative or
    non-finite numbers, an unknown symmetry backend and a novelty reference without a dataset
    name."""
    for name in ("fmax", "symprec", "min_valid_distance"):
        value = getattr(message, name)
        if not math.isfinite(value) or value < 0:
            raise InvalidInput(f"options.{name} must be a finite number >= 0, got {value}")
    symmetry = _SYMMETRY_FROM_PROTO.get(message.symmetry_backend)
    if symmetry is None:
        raise InvalidInput(f"options.symmetry_backend {message.symmetry_backend} is not known")
    reference = None
    if message.HasField("novelty_reference"):
        if not message.novelty_reference.dataset:
            raise InvalidInput("options.novelty_reference needs a dataset name")
        reference = Reference(message.novelty_reference.dataset, message.novelty_reference.ref)
    return ScoreOptions(
        relax=message.relax,
        max_relax_steps=message.max_relax_steps,
        fmax=message.fmax or DEFAULT_FMAX,
        include_forces=message.include_forces,
        include_stress=message.include_stress,
        include_relaxed_crystal=message.include_relaxed_crystal,
        novelty_reference=reference,
        symprec=message.symprec or DEFAULT_SYMPREC,
        min_valid_distance=message.min_valid_distance or DEFAULT_MIN_DISTANCE,
        symmetry=symmetry,
    )


def options_to_proto(options: ScoreOptions) -> scorer_pb2.ScoreOptions:
    """The message of `options` (for clients)."""
    message = scorer_pb2.ScoreOptions(
        relax=options.relax,
        max_relax_steps=options.max_relax_steps,
        fmax=options.fmax,
        include_forces=options.include_forces,
        include_stress=options.include_stress,
        include_relaxed_crystal=options.include_relaxed_crystal,
        symprec=options.symprec,
        min_valid_distance=options.min_valid_distance,
        symmetry_backend=_SYMMETRY_TO_PROTO[options.symmetry],
    )
    if options.novelty_reference is not None:
        ref = options.novelty_reference
        message.novelty_reference.CopyFrom(common_pb2.DatasetRef(dataset=ref.dataset, ref=ref.ref))
    return message


def result_message(
    result: Scores, options: ScoreOptions, crystal: Crystal
) -> scorer_pb2.ScoreResult:
    """The ScoreResult of one crystal (`crystal`: the input, for the relaxed crystal's metadata)."""
    out = scorer_pb2.ScoreResult(index=result.index, crystal_id=result.crystal_id)
    if result.error is not None:
        out.error.CopyFrom(common_pb2.Problem(code=result.error.code, message=result.error.message))
        return out
    out.content_hash = result.content_hash
    out.energy_per_atom = result.energy_per_atom
    out.structure_valid, out.composition_valid = result.structure_valid, result.composition_valid
    out.min_distance = result.min_distance if math.isfinite(result.min_distance) else 0.0
    out.space_group_number = result.space_group_number
    out.space_group_symbol = result.space_group_symbol
    if result.novel is not None:
        out.novel, out.matched_content_hash = result.novel, result.matched_content_hash
    if result.e_above_hull is not None:
        out.e_above_hull = result.e_above_hull
    if result.formation_energy_per_atom is not None:
        out.formation_energy_per_atom = result.formation_energy_per_atom
    if options.include_forces:
        for row in result.forces:
            out.forces.add(x=float(row[0]), y=float(row[1]), z=float(row[2]))
    if options.include_stress:
        out.stress.CopyFrom(
            scorer_pb2.Stress(**dict(zip(_VOIGT, map(float, result.stress), strict=True)))
        )
    if options.relax:
        _relaxation(out, result, options, crystal)
    return out


_VOIGT = ("xx", "yy", "zz", "yz", "xz", "xy")


def _relaxation(
    out: scorer_pb2.ScoreResult, result: Scores, options: ScoreOptions, crystal: Crystal
) -> None:
    out.unrelaxed_energy_per_atom = result.unrelaxed_energy_per_atom
    out.relax_steps, out.relax_converged = result.relax_steps, result.relax_converged
    if options.include_relaxed_crystal:
        relaxed = crystal.replace(lattice=result.lattice, frac_coords=result.frac_coords)
        out.relaxed_crystal.CopyFrom(to_proto(relaxed, include_hash=True))


def info_message(info: ScorerInfo) -> scorer_pb2.GetScorerInfoResponse:
    """The reply of GetScorerInfo."""
    return scorer_pb2.GetScorerInfoResponse(
        potential_name=info.potential_name,
        potential_version=info.potential_version,
        hull_configured=info.hull_configured,
        hull_source=info.hull_source,
        max_batch_size=info.max_batch_size,
        max_atoms=info.max_atoms,
    )


def timing(queued_s: float, compute_s: float, total_s: float) -> common_pb2.Timing:
    """A Timing message from seconds."""
    return common_pb2.Timing(
        queued=_duration(queued_s), compute=_duration(compute_s), total=_duration(total_s)
    )


def _duration(seconds: float) -> Duration:
    message = Duration()
    message.FromNanoseconds(int(seconds * 1e9))
    return message


def scores_from_message(message: scorer_pb2.ScoreResult) -> Scores:
    """The domain Scores of a ScoreResult (for clients); arrays are empty when not sent."""
    if message.HasField("error"):
        return Scores.failed(message.index, message.crystal_id, message.error.code,
                             message.error.message)  # fmt: skip
    relaxed = message.relaxed_crystal if message.HasField("relaxed_crystal") else None
    stress = message.stress if message.HasField("stress") else None
    return Scores(
        index=message.index, crystal_id=message.crystal_id, content_hash=message.content_hash,
        energy_per_atom=message.energy_per_atom,
        unrelaxed_energy_per_atom=(
            message.unrelaxed_energy_per_atom
            if message.HasField("unrelaxed_energy_per_atom") else None
        ),
        forces=np.array([[f.x, f.y, f.z] for f in message.forces]).reshape(-1, 3),
        stress=None if stress is None else np.array([getattr(stress, k) for k in _VOIGT]),
        lattice=None if relaxed is None else from_proto(relaxed).lattice,
        frac_coords=None if relaxed is None else from_proto(relaxed).frac_coords,
        relax_steps=message.relax_steps, relax_converged=message.relax_converged,
        structure_valid=message.structure_valid, composition_valid=message.composition_valid,
        min_distance=message.min_distance, space_group_number=message.space_group_number,
        space_group_symbol=message.space_group_symbol,
        novel=message.novel if message.HasField("novel") else None,
        matched_content_hash=message.matched_content_hash,
        e_above_hull=message.e_above_hull if message.HasField("e_above_hull") else None,
        formation_energy_per_atom=(
            message.formation_energy_per_atom
            if message.HasField("formation_energy_per_atom") else None
        ),
    )  # fmt: skip
