"""StartLoopRequest -> LoopSpec: what the engine supports, anything else refused with
`svc_kit.InvalidInput` naming the field (INVALID_ARGUMENT).

Candidates: either CSP `candidates` or a `chemical_space` (de novo), exactly one. CSP: every
target with the same `num_samples`, `num_steps` and `seed` (the loop's seed: target k of round r
is sampled with seed + 1000 r + k; training and evaluation are seeded by it too), no sampler
kind, checkpoint or constraints per target (the sampler service serves one checkpoint;
`sample_current_checkpoint` samples from the loop's); de novo candidates are in
`sampler.v1.DeNovoTask` terms (elements, required elements, atom range) and need the S.U.N. yield
objective. Metrics: match_rate and valid_rate (higher is better), rmse (lower is better); an
empty metric is match_rate. Zeros (and unset optional numbers) mean the defaults of `LoopSpec`
and `Evaluation` (50 held-out crystals, 4 fine-tuning steps, batch 16, 1 worker; 1000 yield
samples, stable at E_hull <= 0.08 eV/atom, 2000 bootstrap resamples, confidence 0.95, CSP drop
<= 0.01).
"""

from __future__ import annotations

import math
import re

import yaml
from autoperi.loop.v1 import loop_pb2 as pb
from autoperi.sampler.v1 import sampler_pb2
from svc_kit import InvalidInput, shown_value

from loop_svc._select import SelectionCriteria
from loop_svc._spec import ChemicalSpace, Evaluation, FineTune, LoopSpec

METRICS = {"match_rate": True, "valid_rate": True, "rmse": False}  # name -> higher is better
OBJECTIVES = {
    pb.EVALUATION_OBJECTIVE_UNSPECIFIED: "metric",
    pb.EVALUATION_OBJECTIVE_METRIC: "metric",
    pb.EVALUATION_OBJECTIVE_SUN_YIELD: "sun_yield",
}
_CHECKPOINT_ID = re.compile(r"^[0-9a-f]{64}$")
_DEFAULTS = FineTune()
_EVALUATION = Evaluation("")


def request_to_spec(request: pb.StartLoopRequest) -> LoopSpec:
    """The loop of a StartLoopRequest (held-out ref as given: resolve it before starting)."""
    if not request.dataset.dataset:
        raise InvalidInput("dataset.dataset: the dataset the loop grows is required")
    if not _CHECKPOINT_ID.match(request.base_checkpoint_id):
        shown = shown_value(request.base_checkpoint_id)
        raise InvalidInput(f"base_checkpoint_id: {shown} is not a checkpoint id (64 hex digits)")
    if request.num_rounds < 1:
        raise InvalidInput("num_rounds: at least 1")
    targets, space, samples, steps, seed = _task(request)
    evaluation = _evaluation(request.evaluation)
    if space is not None and not evaluation.sun_yield:
        raise InvalidInput(
            "evaluation.objective: de novo candidates (chemical_space) need "
            "EVALUATION_OBJECTIVE_SUN_YIELD (the CSP metric needs a CSP checkpoint)"
        )
    return LoopSpec(
        name=request.name or "loop",
        dataset=request.dataset.dataset,
        branch=request.dataset.ref or "main",
        base_checkpoint=request.base_checkpoint_id,
        targets=targets,
        num_rounds=request.num_rounds,
        samples_per_target=samples,
        sample_steps=steps,
        seed=seed,
        selection=_selection(request.selection),
        fine_tune=_fine_tune(request.fine_tune),
        evaluation=evaluation,
        sample_in_process=request.sample_current_checkpoint,
        chemical_space=space,
    )


def _task(request: pb.StartLoopRequest) -> tuple[tuple, ChemicalSpace | None, int, int, int]:
    """(CSP targets, chemical space, samples per target or per round, steps, seed): exactly one
    of `candidates` and `chemical_space` is given."""
    if bool(request.candidates) == request.HasField("chemical_space"):
        raise InvalidInput(
            "candidates, chemical_space: give CSP targets (candidates) or a chemical space (de "
            "novo candidates), exactly one"
        )
    if request.candidates:
        targets, samples, steps, seed = _candidates(request.candidates)
        return targets, None, samples, steps, seed
    space, samples, steps, seed = _chemical_space(request.chemical_space)
    return (), space, samples, steps, seed


def _chemical_space(message: pb.ChemicalSpace) -> tuple[ChemicalSpace, int, int, int]:
    """(the space, samples per round, steps, seed) of a ChemicalSpace message."""
    if message.num_samples < 1:
        raise InvalidInput("chemical_space.num_samples: at least 1")
    for field in ("allowed_elements", "required_elements"):
        bad = [s for s in getattr(message, field) if not re.fullmatch(r"[A-Z][a-z]?", s)]
        if bad:
            raise InvalidInput(f"chemical_space.{field}: {shown_value(bad[0])} is not a symbol")
    try:
        space = ChemicalSpace(
            tuple(message.allowed_elements), tuple(message.required_elements),
            message.min_atoms, message.max_atoms,
        )  # fmt: skip
    except ValueError as exc:
        raise InvalidInput(f"chemical_space.{exc}") from None
    return space, message.num_samples, message.steps, message.seed


def _candidates(specs) -> tuple[tuple[str, ...], int, int, int]:
    """(targets, samples per target, steps, seed) of the candidate specs."""
    first, targets = specs[0], []
    for k, spec in enumerate(specs):
        name = f"candidates[{k}]"
        if spec.WhichOneof("task") != "csp":
            raise InvalidInput(
                f"{name}: only CSP targets are supported here (for de novo candidates give "
                "chemical_space)"
            )
        for field in ("checkpoint_id", "constraints", "sampler"):
            if _is_set(spec, field):
                raise InvalidInput(f"{name}.{field}: not supported by the loop (leave it unset)")
        if spec.num_samples < 1:
            raise InvalidInput(f"{name}.num_samples: at least 1")
        for field in ("num_samples", "num_steps", "seed"):
            if getattr(spec, field) != getattr(first, field):
                raise InvalidInput(f"{name}.{field}: every target must have the same {field}")
        targets.append(_formula(spec.csp, name))
    return tuple(targets), first.num_samples, first.num_steps, first.seed


def _is_set(spec: sampler_pb2.SampleSpec, field: str) -> bool:
    if field == "constraints":
        return spec.HasField("constraints")
    return bool(getattr(spec, field))


def _formula(task: sampler_pb2.CspTask, name: str) -> str:
    """The cell's formula, e.g. 'SrTiO3' (composition x num_formula_units)."""
    units = task.num_formula_units or 1
    parts = []
    for component in task.composition.components:
        if not re.fullmatch(r"[A-Z][a-z]?", component.element) or component.count < 1:
            shown = shown_value(component.element)
            raise InvalidInput(f"{name}.csp.composition: bad component {shown} x {component.count}")
        count = component.count * units
        parts.append(f"{component.element}{count if count != 1 else ''}")
    if not parts:
        raise InvalidInput(f"{name}.csp.composition: empty")
    return "".join(parts)


def _selection(message: pb.SelectionCriteria) -> SelectionCriteria:
    limit = message.max_e_above_hull if message.HasField("max_e_above_hull") else None
    if limit is not None and not math.isfinite(limit):
        raise InvalidInput("selection.max_e_above_hull: a finite number")
    distance = message.min_fingerprint_distance
    if not math.isfinite(distance) or distance < 0:
        raise InvalidInput("selection.min_fingerprint_distance: a finite number >= 0")
    return SelectionCriteria(
        message.require_valid, message.require_novel, limit, message.max_selected, distance
    )


def _fine_tune(message: pb.FineTuneSpec) -> FineTune:
    if message.config_yaml and not isinstance(_yaml(message.config_yaml), dict):
        raise InvalidInput("fine_tune.config_yaml: a YAML mapping (autoperi_model config)")
    rate = message.learning_rate if message.HasField("learning_rate") else _DEFAULTS.learning_rate
    if not (math.isfinite(rate) and rate > 0):
        raise InvalidInput("fine_tune.learning_rate: a number > 0")
    decay = message.ema_decay if message.HasField("ema_decay") else _DEFAULTS.ema_decay
    if not 0 <= decay < 1:
        raise InvalidInput("fine_tune.ema_decay: in [0, 1)")
    workers = message.num_workers or _DEFAULTS.num_workers
    batch = message.batch_size or _DEFAULTS.batch_size
    if batch % workers:
        raise InvalidInput("fine_tune.batch_size: a multiple of fine_tune.num_workers")
    steps = message.max_steps or _DEFAULTS.max_steps
    return FineTune(steps, batch, rate, decay, workers, message.config_yaml)


def _yaml(text: str) -> object:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return None


def _evaluation(message: pb.EvaluationSpec) -> Evaluation:
    if not message.dataset.dataset:
        raise InvalidInput("evaluation.dataset.dataset: the held-out dataset is required")
    metric = message.metric or "match_rate"
    if metric not in METRICS:
        known = ", ".join(METRICS)
        raise InvalidInput(f"evaluation.metric: {shown_value(metric)} is not one of {known}")
    higher = METRICS[metric]
    if message.metric and message.higher_is_better != higher:
        raise InvalidInput(
            f"evaluation.higher_is_better: {metric} is {'higher' if higher else 'lower'}-is-better"
        )
    if not math.isfinite(message.min_improvement):
        raise InvalidInput("evaluation.min_improvement: a finite number")
    if message.objective not in OBJECTIVES:
        raise InvalidInput(f"evaluation.objective: {message.objective} is not an objective")
    try:
        return Evaluation(
            dataset=message.dataset.dataset,
            ref=message.dataset.ref or "main",
            size=message.max_crystals or 50,
            steps=message.num_steps,
            metric=metric,
            higher_is_better=higher,
            min_improvement=message.min_improvement,
            objective=OBJECTIVES[message.objective],
            yield_samples=message.yield_samples or _EVALUATION.yield_samples,
            bootstrap_resamples=message.bootstrap_resamples or _EVALUATION.bootstrap_resamples,
            **{name: _optional(message, name) for name in _OPTIONAL},
        )
    except ValueError as exc:  # the Evaluation's own checks, which name the field
        raise InvalidInput(f"evaluation.{exc}") from None


_OPTIONAL = ("stable_e_above_hull", "confidence", "max_csp_drop")


def _optional(message: pb.EvaluationSpec, name: str) -> float:
    """The field's value when set, else the Evaluation default."""
    return getattr(message if message.HasField(name) else _EVALUATION, name)
