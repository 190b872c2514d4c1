"""The generic generative core: one backbone, a map field name -> FieldProcess, one loss.

Subclasses add their sampler (ODE integration for flows, ancestral steps for diffusion); the
training loss, the wiring checks and the physics terms are shared here.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from periodic import crystal_table
from torch import Tensor, nn

from autoperi_model._batch import CrystalBatch
from autoperi_model._config import PhysicsConfig
from autoperi_model._fields import FieldProcess
from autoperi_model._physics import min_distance_penalty

MIN_DISTANCE = "min_distance"
TYPES = "atomic_numbers"  # the field a de novo model generates too


def _single(batch: CrystalBatch, index: int, start: int) -> CrystalBatch:
    """Crystal `index` (first atom `start`) of `batch` as a batch of one."""
    n = int(batch.num_atoms[index])
    return CrystalBatch(
        lattice=batch.lattice[index : index + 1],
        frac_coords=batch.frac_coords[start : start + n],
        atomic_numbers=batch.atomic_numbers[start : start + n],
        batch=torch.zeros(n, dtype=torch.long),
        num_atoms=batch.num_atoms[index : index + 1],
        symmetry=None if batch.symmetry is None else crystal_table(batch.symmetry, index, start, n),
    )


def output_of(process: FieldProcess) -> str:
    """The backbone output a process reads: its `output` attribute, else its field's name."""
    return getattr(process, "output", process.key)


class GenerativeModel(nn.Module):
    """Joint generation of the fields in `processes`; the other fields are given (e.g. the atom
    types in CSP, which de novo generation generates too).

    Construction checks the wiring: every process must name a CrystalBatch field and read a
    backbone output (`output_of`), and the loss weights must cover exactly the processes.
    """

    def __init__(
        self,
        backbone: nn.Module,
        processes: Mapping[str, FieldProcess],
        weights: Mapping[str, float],
        physics: PhysicsConfig | None = None,
    ) -> None:
        super().__init__()
        for key, proc in processes.items():
            if proc.key != key or output_of(proc) not in backbone.outputs:
                raise ValueError(f"process for {key!r} has no matching backbone output")
            if key not in CrystalBatch.__dataclass_fields__:
                raise ValueError(f"process for {key!r} names no CrystalBatch field")
        if set(weights) != set(processes):
            raise ValueError(f"loss weights {sorted(weights)} != processes {sorted(processes)}")
        self.backbone = backbone
        self.processes = dict(processes)
        self.weights = dict(weights)
        self.physics = physics or PhysicsConfig()

    def predictions(
        self, state: CrystalBatch, t: Tensor, allowed_types: Tensor | None = None
    ) -> dict[str, Tensor]:
        """Each generated field's prediction (velocity or clean-data target) at time t (B,).

        `allowed_types` (N, max_z + 1) bool, for a model that generates the atom types: logits
        of types that are not allowed become -inf (None: every type the model knows)."""
        out = self.backbone(state, t)
        pred = {k: p.project(out[output_of(p)], state) for k, p in self.processes.items()}
        if allowed_types is not None and TYPES in pred:
            pred[TYPES] = pred[TYPES].masked_fill(~allowed_types, float("-inf"))
        return pred

    def draw_base(self, template: CrystalBatch, generators: list[torch.Generator]) -> CrystalBatch:
        """`template` with every generated field at its base (t = 0): crystal i drawn from
        `generators[i]` alone, so a crystal's base does not depend on the rest of the batch."""
        starts = (torch.cumsum(template.num_atoms, 0) - template.num_atoms).tolist()
        parts: dict[str, list[Tensor]] = {k: [] for k in self.processes}
        for i, (start, gen) in enumerate(zip(starts, generators, strict=True)):
            one = _single(template, i, start)
            for key, process in self.processes.items():
                parts[key].append(process.sample_base(one, gen))
        return template.replace(**{k: torch.cat(v) for k, v in parts.items()})

    def clean_estimate(
        self, state: CrystalBatch, pred: Mapping[str, Tensor], t: Tensor
    ) -> CrystalBatch:
        """The one-step estimate of the clean crystal from `state` and predictions at t."""
        fields = {
            k: p.clean_estimate(getattr(state, k), pred[k], t, state)
            for k, p in self.processes.items()
        }
        return state.replace(**fields)

    def loss(
        self, data: CrystalBatch, generator: torch.Generator
    ) -> tuple[Tensor, dict[str, float]]:
        """Training loss of a data batch: weighted sum and parts (means over crystals).

        t ~ U(0, 1) per crystal; each field is corrupted by its process; with
        `physics.min_distance_weight` > 0 the minimum-distance penalty of the one-step clean
        estimate is added (part "min_distance").
        """
        t = torch.rand(data.num_crystals, generator=generator, dtype=data.lattice.dtype)
        fields, targets = {}, {}
        for key, proc in self.processes.items():
            fields[key], targets[key] = proc.corrupt(getattr(data, key), t, data, generator)
        state = data.replace(**fields)
        pred = self.predictions(state, t)
        parts = {k: p.loss(pred[k], targets[k], t, state).mean() for k, p in self.processes.items()}
        total = sum(self.weights[k] * v for k, v in parts.items())
        if self.physics.min_distance_weight > 0:
            estimate = self.clean_estimate(state, pred, t)
            parts[MIN_DISTANCE] = min_distance_penalty(
                estimate, self.physics.min_distance_scale
            ).mean()
            total = total + self.physics.min_distance_weight * parts[MIN_DISTANCE]
        return total, {k: float(v.detach()) for k, v in parts.items()}
