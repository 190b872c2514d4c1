"""What a loop does (mirrors loop.v1.StartLoopRequest): a plain, JSON-serialisable spec."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from loop_svc._select import SelectionCriteria

#: What decides a merge: the held-out CSP metric, or the S.U.N. yield of fresh samples.
OBJECTIVES = ("metric", "sun_yield")


@dataclass(frozen=True)
class FineTune:
    """Fine-tuning of each round (loop.v1.FineTuneSpec plus the optimiser knobs).

    `config_yaml` empty: the base checkpoint's config. `ema_decay` is lowered from the
    pre-training value so that a few steps move the (EMA) weights that sampling uses.
    """

    max_steps: int = 4
    batch_size: int = 16
    learning_rate: float = 1e-4
    ema_decay: float = 0.5
    num_workers: int = 1
    config_yaml: str = ""


@dataclass(frozen=True)
class Evaluation:
    """What decides the merge (loop.v1.EvaluationSpec).

    Held-out data: the ingest dataset `dataset` at `ref` (a commit id once the loop is started),
    never trained on; its first `size` crystals (by content hash), one k = 1 sample each with
    `steps` integration steps (0: the checkpoint's). Objective "metric": `metric` improves by
    `min_improvement`. Objective "sun_yield" (`_yield`): the S.U.N. yield of `yield_samples`
    fresh samples (stable: relaxed E_hull <= `stable_e_above_hull` eV/atom) improves, i.e. the
    `confidence` percentile-bootstrap interval (`bootstrap_resamples`) of after - before lies
    above 0, and the held-out CSP match rate drops by at most `max_csp_drop` (when the
    checkpoints serve CSP).
    """

    dataset: str
    ref: str = "main"
    size: int = 50
    steps: int = 0
    metric: str = "match_rate"
    higher_is_better: bool = True
    min_improvement: float = 0.02
    objective: str = "metric"
    yield_samples: int = 1000
    stable_e_above_hull: float = 0.08
    bootstrap_resamples: int = 2000
    confidence: float = 0.95
    max_csp_drop: float = 0.01

    def __post_init__(self) -> None:
        """ValueError naming the field (as in loop.v1.EvaluationSpec) of a value out of range."""
        for name, ok, wanted in (
            ("objective", self.objective in OBJECTIVES, f"one of {', '.join(OBJECTIVES)}"),
            ("yield_samples", self.yield_samples >= 1, "at least 1"),
            ("stable_e_above_hull", math.isfinite(self.stable_e_above_hull), "a finite number"),
            ("bootstrap_resamples", self.bootstrap_resamples >= 1, "at least 1"),
            ("confidence", 0 < self.confidence < 1, "in (0, 1)"),
            ("max_csp_drop", 0 <= self.max_csp_drop < math.inf, "a finite number >= 0"),
        ):
            if not ok:
                raise ValueError(f"{name}: {wanted}, not {getattr(self, name)!r}")

    @property
    def sun_yield(self) -> bool:
        """Whether the S.U.N. yield decides the merge (else the held-out CSP metric)."""
        return self.objective == "sun_yield"


@dataclass(frozen=True)
class ChemicalSpace:
    """De novo candidates (loop.v1.ChemicalSpace without the count, steps and seed, which are
    the loop's): elements among `elements` (symbols; empty: any the model knows), each of
    `required` in every sample, `min_atoms`..`max_atoms` atoms per cell (0: unbounded)."""

    elements: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    min_atoms: int = 0
    max_atoms: int = 0

    def __post_init__(self) -> None:
        """ValueError naming the field (as in loop.v1.ChemicalSpace) of an impossible space."""
        from pymatgen.core import Element

        for name, symbols in (("allowed_elements", self.elements),
                              ("required_elements", self.required)):  # fmt: skip
            if len(set(symbols)) != len(symbols) or not all(map(Element.is_valid_symbol, symbols)):
                raise ValueError(f"{name}: element symbols, each once (not {list(symbols)})")
        outside = sorted(set(self.required) - set(self.elements)) if self.elements else []
        if outside:
            raise ValueError(f"required_elements: {', '.join(outside)} not in allowed_elements")
        if self.min_atoms < 0 or self.max_atoms < 0:
            raise ValueError("min_atoms: min_atoms and max_atoms must be at least 0")
        if self.max_atoms and self.max_atoms < max(self.min_atoms, len(self.required)):
            raise ValueError("max_atoms: at least min_atoms and the number of required elements")

    @property
    def name(self) -> str:
        """The chemical system, e.g. 'Fe-Li-O-P' (the allowed elements, sorted), or 'any'."""
        return "-".join(sorted(self.elements)) or "any"

    def atomic_numbers(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(allowed, required) as sorted atomic numbers."""
        from pymatgen.core import Element

        def numbers(symbols: tuple[str, ...]) -> tuple[int, ...]:
            return tuple(sorted(Element(s).Z for s in symbols))

        return numbers(self.elements), numbers(self.required)


@dataclass(frozen=True)
class LoopSpec:
    """A loop: grow `dataset`/`branch` for `num_rounds` rounds from `base_checkpoint`.

    `base_checkpoint`: a checkpoint id of the object store, or a checkpoint directory (stored
    once, on the first run). Candidates, seeded by `seed` and the round: `samples_per_target` CSP
    samples of each composition in `targets`, or (`chemical_space`, with `targets` empty)
    `samples_per_target` de novo samples on that space; `sample_in_process`: sampled from the
    loop's current checkpoint in the loop's process instead of the sampler service. De novo
    candidates need the S.U.N. yield objective (a de novo checkpoint cannot do CSP).
    """

    name: str
    dataset: str
    base_checkpoint: str
    targets: tuple[str, ...]
    evaluation: Evaluation
    branch: str = "main"
    num_rounds: int = 3
    samples_per_target: int = 8
    sample_steps: int = 0
    seed: int = 0
    selection: SelectionCriteria = field(default_factory=SelectionCriteria)
    fine_tune: FineTune = field(default_factory=FineTune)
    sample_in_process: bool = False
    chemical_space: ChemicalSpace | None = None

    def __post_init__(self) -> None:
        if self.num_rounds < 1:
            raise ValueError("num_rounds must be at least 1")
        if bool(self.targets) == (self.chemical_space is not None):
            raise ValueError("give target compositions or a chemical space (exactly one)")
        if self.chemical_space is not None and not self.evaluation.sun_yield:
            raise ValueError("a chemical space (de novo candidates) needs the sun_yield objective")
        if self.samples_per_target < 1:
            raise ValueError("samples_per_target must be at least 1")
        if self.fine_tune.batch_size % self.fine_tune.num_workers:
            raise ValueError("fine-tune batch_size must be a multiple of num_workers")

    def to_json(self) -> dict[str, Any]:
        """The spec as JSON values (lists for tuples), as kept in the journal."""
        data = asdict(self)
        data["targets"] = list(self.targets)
        if self.chemical_space is not None:
            space = data["chemical_space"]
            space.update(elements=list(space["elements"]), required=list(space["required"]))
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LoopSpec:
        """The spec of `to_json`'s values (as a journal keeps them; fields added since a journal
        was written take their defaults)."""
        space = data.get("chemical_space")
        return cls(
            **{
                **data,
                "targets": tuple(data["targets"]),
                "evaluation": Evaluation(**data["evaluation"]),
                "selection": SelectionCriteria(**data["selection"]),
                "fine_tune": FineTune(**data["fine_tune"]),
                "chemical_space": None if space is None else _space(space),
            }
        )


def _space(data: dict[str, Any]) -> ChemicalSpace:
    return ChemicalSpace(
        **{**data, "elements": tuple(data["elements"]), "required": tuple(data["required"])}
    )
