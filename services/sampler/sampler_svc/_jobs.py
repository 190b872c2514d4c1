"""Requests as domain objects, their validation against the loaded engine, and chunking.

`validate(request, info, limits)` turns a `SampleSpecIn` (what a client asked, read from the
proto) into a `Job` (what the deployment will run) or raises `InvalidInput` / `NotFound` with
a reason the client sees. `Job.chunks` splits a job into the units the batcher merges.
"""

from __future__ import annotations

import dataclasses
import re
import secrets

import numpy as np
from autoperi_model import atom_count_range, element_numbers, parse_composition
from pymatgen.core import Element
from svc_kit import InvalidInput, NotFound, shown_value

from sampler_svc._engine import Chunk, DeNovoSpec, Engine, EngineInfo

_CHECKPOINT_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")  # a weights digest or a run's id


@dataclasses.dataclass(frozen=True)
class SampleSpecIn:
    """A SampleSpec as read from the wire (nothing checked yet)."""

    task: str  # "csp", "de_novo" or "" (unset)
    components: tuple[tuple[str, int], ...] = ()  # (element symbol, atoms per formula unit)
    num_formula_units: int = 0
    de_novo: DeNovoSpec | None = None
    num_samples: int = 0
    seed: int | None = None
    num_steps: int = 0
    sampler: str = ""  # "" = checkpoint default; lower-case kind name otherwise
    checkpoint_id: str = ""
    min_interatomic_distance: float = 0.0
    max_attempts: int = 0  # 0 means 3
    space_group_number: int = 0
    target_properties: tuple[str, ...] = ()
    timeout_s: float | None = None  # client deadline, relative to arrival


@dataclasses.dataclass(frozen=True)
class Limits:
    """Per-request limits of the deployment."""

    max_samples: int
    max_atoms: int
    max_steps: int = 1000
    max_attempts: int = 10


@dataclasses.dataclass(frozen=True)
class Job:
    """A validated request: `num_samples` crystals of `cell` (CSP) or of `de_novo`."""

    num_samples: int
    seed: int
    steps: int
    sampler: str
    nfe: int
    checkpoint_id: str
    cell: np.ndarray | None = None  # (n,) atomic numbers of one cell
    de_novo: DeNovoSpec | None = None
    deadline: float | None = None  # time.monotonic()
    min_distance: float = 0.0  # Angstrom; samples with closer atoms are regenerated
    max_attempts: int = 1  # tries per sample (1: no regeneration)
    conditions: dict[str, float] = dataclasses.field(default_factory=dict)  # e.g. space group

    def chunks(self, chunk_samples: int, max_batch_atoms: int) -> list[Chunk]:
        """Consecutive chunks of at most `chunk_samples` samples and `max_batch_atoms` atoms."""
        atoms = len(self.cell) if self.cell is not None else self.de_novo.max_atoms
        size = max(1, min(chunk_samples, max_batch_atoms // atoms))
        return [
            self._chunk(first, min(size, self.num_samples - first))
            for first in range(0, self.num_samples, size)
        ]

    def _chunk(self, first: int, count: int) -> Chunk:
        cells = (self.cell,) * count if self.cell is not None else ()
        indices = tuple(range(first, first + count))
        return Chunk(
            self.seed, indices, self.steps, self.sampler, cells, self.de_novo, self.deadline,
            conditions=self.conditions,
        )  # fmt: skip


def validate(spec: SampleSpecIn, engine: Engine, limits: Limits, arrival: float) -> Job:
    """The Job of `spec` for `engine`, or InvalidInput / NotFound naming what is wrong.

    `arrival` (time.monotonic()) anchors the client's relative deadline.
    """
    info = engine.info
    checkpoint_id = _checkpoint(spec, info)
    sampler = _sampler(spec, info)
    steps = _steps(spec, info, limits)
    if not 1 <= spec.num_samples <= limits.max_samples:
        raise InvalidInput(
            f"num_samples must be in 1..{limits.max_samples}, got {spec.num_samples}"
        )
    attempts = _constraints(spec, info, limits)
    cell, de_novo = _task(spec, info, limits)
    seed = spec.seed if spec.seed is not None else secrets.randbits(63)
    deadline = None if spec.timeout_s is None else arrival + spec.timeout_s
    job = Job(
        spec.num_samples,
        seed,
        steps,
        sampler,
        engine.nfe(sampler, steps),
        checkpoint_id,
        cell,
        de_novo,
        deadline,
        spec.min_interatomic_distance,
        attempts,
        {"space_group_number": spec.space_group_number} if spec.space_group_number else {},
    )
    _servable(job, engine)
    return job


def _servable(job: Job, engine: Engine) -> None:
    """InvalidInput with the engine's reason when it cannot serve the job's first sample
    (every sample asks the same), e.g. a de novo request no ion-exchange template satisfies."""
    try:
        engine.check(job._chunk(0, 1))
    except ValueError as exc:
        raise InvalidInput(str(exc).removeprefix("sample 0: ")) from None


def _checkpoint(spec: SampleSpecIn, info: EngineInfo) -> str:
    """The loaded checkpoint's id. A request names a checkpoint by id only, never by a path:
    InvalidInput (not repeating the value) for one that is not an id, NotFound for an id this
    deployment does not serve (its checkpoints come from its settings, not from requests)."""
    cid = spec.checkpoint_id
    if cid and not _CHECKPOINT_ID.match(cid):
        raise InvalidInput(
            f"checkpoint_id {shown_value(cid)} is not a checkpoint id (1-128 letters, digits,"
            " '_' or '-'; paths and URIs are not accepted)"
        )
    if cid and cid != info.checkpoint_id:
        raise NotFound(
            f"checkpoint {cid!r} is not served here; this deployment serves {info.checkpoint_id!r}"
        )
    return info.checkpoint_id


def _sampler(spec: SampleSpecIn, info: EngineInfo) -> str:
    sampler = spec.sampler or info.default_sampler
    if sampler not in info.samplers:
        raise InvalidInput(
            f"sampler {sampler!r} is not supported by checkpoint {info.checkpoint_id} "
            f"(supported: {', '.join(info.samplers)})"
        )
    return sampler


def _steps(spec: SampleSpecIn, info: EngineInfo, limits: Limits) -> int:
    steps = spec.num_steps or info.default_steps
    if steps > limits.max_steps:
        raise InvalidInput(f"num_steps must be at most {limits.max_steps}, got {steps}")
    return steps


def _constraints(spec: SampleSpecIn, info: EngineInfo, limits: Limits) -> int:
    """Check the constraints; return the tries per sample (1 without a distance constraint)."""
    cid = info.checkpoint_id
    if not 0 <= spec.min_interatomic_distance <= 5:
        raise InvalidInput("constraints.min_interatomic_distance must be in 0..5 Angstrom")
    if spec.max_attempts > limits.max_attempts:
        raise InvalidInput(f"constraints.max_attempts must be at most {limits.max_attempts}")
    if spec.space_group_number and "space_group_number" not in info.conditions:
        raise InvalidInput(f"checkpoint {cid} is not conditioned on the space group")
    if not 0 <= spec.space_group_number <= 230:
        raise InvalidInput("constraints.space_group_number must be in 1..230 (0: none)")
    unknown = [p for p in spec.target_properties if p not in info.conditions]
    if unknown:
        raise InvalidInput(f"checkpoint {cid} is not conditioned on {', '.join(unknown)}")
    if spec.min_interatomic_distance == 0:
        return 1
    return spec.max_attempts or 3


def _task(
    spec: SampleSpecIn, info: EngineInfo, limits: Limits
) -> tuple[np.ndarray | None, DeNovoSpec | None]:
    if spec.task == "de_novo":
        if not info.supports_de_novo:
            raise InvalidInput(
                f"checkpoint {info.checkpoint_id} does not support de novo generation "
                "(a crystal structure prediction model): send a CspTask with a composition"
            )
        return None, _de_novo(spec.de_novo, info, limits)
    if spec.task != "csp":
        raise InvalidInput("spec needs a task: csp (a composition) or de_novo")
    if not info.supports_csp:
        raise InvalidInput(
            f"checkpoint {info.checkpoint_id} does not support CSP (a de novo model: it "
            "generates the atom types itself): send a DeNovoTask"
        )
    return _cell(spec, info, limits), None


def _de_novo(task: DeNovoSpec, info: EngineInfo, limits: Limits) -> DeNovoSpec:
    """The task with checked elements and its atom range narrowed to the counts with training
    mass (min_atoms 0 means 1, max_atoms 0 the limit), so max_atoms is its largest cell."""
    lo, hi = max(task.min_atoms, 1), task.max_atoms or limits.max_atoms
    if not lo <= hi <= limits.max_atoms:
        raise InvalidInput(f"need 1 <= min_atoms <= max_atoms <= {limits.max_atoms}")
    try:
        allowed = element_numbers(task.elements, info.max_z)
        required = element_numbers(task.required, info.max_z, "de novo required_elements")
        _check_required(allowed, required, hi)
        lo, hi = atom_count_range(info.atom_counts, max(lo, len(required)), hi)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    return DeNovoSpec(lo, hi, task.elements, task.required)


def _check_required(allowed: tuple[int, ...], required: tuple[int, ...], hi: int) -> None:
    """ValueError naming required_elements outside the allowed ones, or more than `hi`."""
    outside = sorted(set(required) - set(allowed)) if allowed else []
    if outside:
        names = ", ".join(Element.from_Z(z).symbol for z in outside)
        raise ValueError(f"de novo required_elements {names} are not among the elements")
    if len(required) > hi:
        raise ValueError(f"de novo required_elements has {len(required)} elements; max_atoms {hi}")


def _cell(spec: SampleSpecIn, info: EngineInfo, limits: Limits) -> np.ndarray:
    """Atomic numbers of one cell: composition x num_formula_units (0 means 1)."""
    if not spec.components:
        raise InvalidInput("empty composition: give at least one element with a count")
    bad = [s for s, _ in spec.components if not Element.is_valid_symbol(s)]
    if bad:
        raise InvalidInput(f"composition has unknown elements: {', '.join(map(repr, bad))}")
    if any(count <= 0 for _, count in spec.components):
        raise InvalidInput("composition counts must be positive")
    z = spec.num_formula_units or 1
    formula = "".join(f"{symbol}{count * z}" for symbol, count in spec.components)
    if sum(count for _, count in spec.components) * z > limits.max_atoms:
        raise InvalidInput(f"cell {formula} has more than {limits.max_atoms} atoms")
    try:
        cell = parse_composition(formula)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    if cell.max() > info.max_z:
        raise InvalidInput(f"composition {formula} has elements beyond Z = {info.max_z}")
    return cell
