"""The generic generative model: one backbone, a map field name -> FieldProcess, ODE samplers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import torch
from torch import Tensor, nn

from autoperi_model._backbone import Backbone
from autoperi_model._batch import CrystalBatch
from autoperi_model._config import Config
from autoperi_model._fields import FieldProcess, LatticeFlow, TorusFlow

Sampler = Literal["euler", "heun"]


class FlowModel(nn.Module):
    """Joint generation of the fields in `processes`; the other fields (types) are given (CSP).

    Construction checks the wiring: every process must name a field the backbone outputs and that
    a CrystalBatch has.
    """

    def __init__(
        self,
        backbone: nn.Module,
        processes: Mapping[str, FieldProcess],
        weights: Mapping[str, float],
    ) -> None:
        super().__init__()
        for key, proc in processes.items():
            if proc.key != key or key not in backbone.outputs:
                raise ValueError(f"process for {key!r} has no matching backbone output")
            if key not in CrystalBatch.__dataclass_fields__:
                raise ValueError(f"process for {key!r} names no CrystalBatch field")
        if set(weights) != set(processes):
            raise ValueError(f"loss weights {sorted(weights)} != processes {sorted(processes)}")
        self.backbone = backbone
        self.processes = dict(processes)
        self.weights = dict(weights)

    def velocities(self, state: CrystalBatch, t: Tensor) -> dict[str, Tensor]:
        """Velocity of each generated field at `state`, time t (B,)."""
        out = self.backbone(state, t)
        return {key: proc.project(out[key], state) for key, proc in self.processes.items()}

    def loss(
        self, data: CrystalBatch, generator: torch.Generator
    ) -> tuple[Tensor, dict[str, float]]:
        """Flow-matching loss of a data batch: weighted sum and parts (means over crystals)."""
        t = torch.rand(data.num_crystals, generator=generator, dtype=data.lattice.dtype)
        fields, targets = {}, {}
        for key, proc in self.processes.items():
            x0 = proc.sample_base(data, generator)
            fields[key], targets[key] = proc.interpolate(x0, getattr(data, key), t, data)
        state = data.replace(**fields)
        pred = self.velocities(state, t)
        parts = {k: p.loss(pred[k], targets[k], state).mean() for k, p in self.processes.items()}
        total = sum(self.weights[k] * v for k, v in parts.items())
        return total, {k: float(v.detach()) for k, v in parts.items()}

    @torch.no_grad()
    def sample(
        self,
        template: CrystalBatch,
        steps: int,
        sampler: Sampler,
        generator: torch.Generator,
        anneal: Mapping[str, float] | None = None,
    ) -> tuple[CrystalBatch, int]:
        """Integrate from the base at t = 0 to t = 1 in `steps` uniform steps.

        `anneal` maps a field to s >= 0: its velocity is scaled by (1 + s t) (FlowMM's inference
        anti-annealing; s = 0 is the plain ODE).

        Returns the generated batch (fields of `template` not generated are kept) and the number
        of network evaluations per sample (NFE): `steps` for Euler, `2 * steps` for Heun.
        """
        if steps < 1 or sampler not in ("euler", "heun"):
            raise ValueError(f"need steps >= 1 and sampler in euler/heun, got {steps}, {sampler!r}")
        state = template.replace(
            **{k: p.sample_base(template, generator) for k, p in self.processes.items()}
        )
        dt, nfe = 1.0 / steps, 0
        for i in range(steps):
            t = torch.full((state.num_crystals,), i * dt, dtype=state.lattice.dtype)
            vel = self._scaled(state, t, anneal or {})
            nfe += 1
            if sampler == "heun":
                guess = self._advance(state, vel, dt)
                vel2 = self._scaled(guess, t + dt, anneal or {})
                nfe += 1
                vel = {k: 0.5 * (vel[k] + vel2[k]) for k in vel}
            state = self._advance(state, vel, dt)
        return state, nfe

    def _scaled(self, state: CrystalBatch, t: Tensor, anneal: Mapping[str, float]) -> dict:
        vel = self.velocities(state, t)
        for key, s in anneal.items():
            factor = 1 + s * t
            if vel[key].shape[0] != state.num_crystals:  # per-atom field
                factor = factor.index_select(0, state.batch)
            vel[key] = vel[key] * factor.view(-1, *[1] * (vel[key].dim() - 1))
        return vel

    def _advance(self, state: CrystalBatch, vel: dict[str, Tensor], dt: float) -> CrystalBatch:
        moved = {k: p.step(getattr(state, k), vel[k], dt, state) for k, p in self.processes.items()}
        return state.replace(**moved)


def build_model(config: Config, volume_per_atom: float) -> FlowModel:
    """The CSP flow model of a config: positions on the torus and the lattice in GL3/O(3)."""
    torus, lattice = TorusFlow(), LatticeFlow(volume_per_atom, config.flow.lattice_base_std)
    return FlowModel(
        Backbone(config.backbone),
        {torus.key: torus, lattice.key: lattice},
        {torus.key: 1.0, lattice.key: config.flow.lattice_weight},
    )
