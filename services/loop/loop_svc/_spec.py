"""What a loop does (mirrors loop.v1.StartLoopRequest): a plain, JSON-serialisable spec."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from loop_svc._select import SelectionCriteria


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
    """The held-out evaluation that decides the merge (loop.v1.EvaluationSpec).

    Held-out data: the ingest dataset `dataset` at `ref` (a commit id once the loop is started),
    never trained on; its first `size` crystals (by content hash), one k = 1 sample each with
    `steps` integration steps (0: the checkpoint's).
    """

    dataset: str
    ref: str = "main"
    size: int = 50
    steps: int = 0
    metric: str = "match_rate"
    higher_is_better: bool = True
    min_improvement: float = 0.02


@dataclass(frozen=True)
class LoopSpec:
    """A loop: grow `dataset`/`branch` for `num_rounds` rounds from `base_checkpoint`.

    `base_checkpoint`: a checkpoint id of the object store, or a checkpoint directory (stored
    once, on the first run). Candidates: `samples_per_target` CSP samples of each composition in
    `targets` per round, seeded by `seed` and the round; `sample_in_process`: sampled from the
    loop's current checkpoint in the loop's process instead of the sampler service.
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

    def __post_init__(self) -> None:
        if self.num_rounds < 1:
            raise ValueError("num_rounds must be at least 1")
        if not self.targets:
            raise ValueError("give at least one target composition")
        if self.samples_per_target < 1:
            raise ValueError("samples_per_target must be at least 1")
        if self.fine_tune.batch_size % self.fine_tune.num_workers:
            raise ValueError("fine-tune batch_size must be a multiple of num_workers")

    def to_json(self) -> dict[str, Any]:
        """The spec as JSON values (lists for tuples), as kept in the journal."""
        data = asdict(self)
        data["targets"] = list(self.targets)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LoopSpec:
        """The spec of `to_json`'s values (as a journal keeps them)."""
        return cls(
            **{
                **data,
                "targets": tuple(data["targets"]),
                "evaluation": Evaluation(**data["evaluation"]),
                "selection": SelectionCriteria(**data["selection"]),
                "fine_tune": FineTune(**data["fine_tune"]),
            }
        )
