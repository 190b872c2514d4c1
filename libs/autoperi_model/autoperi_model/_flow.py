"""Flow matching on torus x lattice with ODE samplers, and `build_model` for every process."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import torch
from torch import Tensor

from autoperi_model._backbone import Backbone
from autoperi_model._batch import CrystalBatch
from autoperi_model._config import Config
from autoperi_model._fields import LatticeFlow, TorusFlow
from autoperi_model._lattice import LatticeRestoreFlow
from autoperi_model._model import GenerativeModel
from autoperi_model._symmetric import SymmetricLatticeFlow, SymmetricTorusFlow
from autoperi_model._types import MaskedTypeFlow

Sampler = Literal["euler", "heun", "ddpm"]


class FlowModel(GenerativeModel):
    """Flow matching (SCIENCE.md 4.1): predictions are velocities, sampled by Euler or Heun."""

    samplers = ("euler", "heun")

    def velocities(
        self, state: CrystalBatch, t: Tensor, allowed_types: Tensor | None = None
    ) -> dict[str, Tensor]:
        """Velocity of each generated field at `state`, time t (B,) (see `predictions`)."""
        return self.predictions(state, t, allowed_types)

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
        state = template.replace(
            **{k: p.sample_base(template, generator) for k, p in self.processes.items()}
        )
        return self.integrate(state, steps, sampler, generator, anneal)

    def sample_from(
        self,
        state: CrystalBatch,
        steps: int,
        sampler: Sampler,
        generator: torch.Generator,
        anneal: Mapping[str, float] | None = None,
        allowed_types: Tensor | None = None,
    ) -> tuple[CrystalBatch, int]:
        """Generate from a base state drawn beforehand (`draw_base`): `integrate`."""
        return self.integrate(state, steps, sampler, generator, anneal, allowed_types)

    @torch.no_grad()
    def integrate(
        self,
        state: CrystalBatch,
        steps: int,
        sampler: Sampler,
        generator: torch.Generator,
        anneal: Mapping[str, float] | None = None,
        allowed_types: Tensor | None = None,
        start_time: float = 0.0,
    ) -> tuple[CrystalBatch, int]:
        """Integrate the generated fields of `state` (taken as the state at t = `start_time`)
        to t = 1 in `steps` uniform steps; `sample` without the base draw. `allowed_types`
        restricts generated types (see `predictions`). Returns the batch and the NFE per
        sample."""
        if steps < 1 or sampler not in self.samplers or not 0.0 <= start_time < 1.0:
            known = "/".join(self.samplers)
            raise ValueError(
                f"need steps >= 1, sampler in {known} and 0 <= start_time < 1, got {steps}, "
                f"{sampler!r}, {start_time}"
            )
        dt, nfe = (1.0 - start_time) / steps, 0
        for i in range(steps):
            t = torch.full((state.num_crystals,), start_time + i * dt, dtype=state.lattice.dtype)
            vel = self._scaled(state, t, anneal or {}, allowed_types)
            nfe += 1
            if sampler == "heun":
                guess = self._advance(state, vel, t, dt, generator)
                vel2 = self._scaled(guess, t + dt, anneal or {}, allowed_types)
                nfe += 1
                vel = {k: 0.5 * (vel[k] + vel2[k]) for k in vel}
            state = self._advance(state, vel, t, dt, generator)
        return state, nfe

    def _scaled(
        self, state: CrystalBatch, t: Tensor, anneal: Mapping[str, float], allowed: Tensor | None
    ) -> dict:
        vel = self.velocities(state, t, allowed)
        for key, s in anneal.items():
            factor = 1 + s * t
            if vel[key].shape[0] != state.num_crystals:  # per-atom field
                factor = factor.index_select(0, state.batch)
            vel[key] = vel[key] * factor.view(-1, *[1] * (vel[key].dim() - 1))
        return vel

    def _advance(
        self,
        state: CrystalBatch,
        vel: dict[str, Tensor],
        t: Tensor,
        dt: float,
        generator: torch.Generator,
    ) -> CrystalBatch:
        moved = {
            k: p.step(getattr(state, k), vel[k], t, dt, state, generator)
            for k, p in self.processes.items()
        }
        return state.replace(**moved)


def build_model(config: Config, volume_per_atom: float) -> GenerativeModel:
    """The model of a config: positions on the torus and the lattice in GL3/O(3), by flow
    matching (`process: flow`) or diffusion (`process: diffusion`); with `task: dng` also the
    atom types, by masked discrete flow matching (flow only); `task: lattice` generates the
    lattice alone from a deformed or cubic cell (flow only)."""
    if config.process == "diffusion":
        if config.task != "csp":
            raise ValueError(f"task: {config.task} needs process: flow")
        from autoperi_model._diffusion import build_diffusion_model

        return build_diffusion_model(config, volume_per_atom)
    if config.task == "lattice":
        restore = LatticeRestoreFlow(
            config.flow.deform_std, config.flow.cubic_share, config.flow.lattice_base_std
        )
        processes, weights = {restore.key: restore}, {restore.key: 1.0}
        return FlowModel(Backbone(config.backbone), processes, weights, config.physics)
    if config.flow.symmetric:
        if config.task != "csp":
            raise ValueError(f"flow.symmetric needs task: csp, not {config.task}")
        torus = SymmetricTorusFlow()
        lattice = SymmetricLatticeFlow(volume_per_atom, config.flow.lattice_base_std)
    else:
        torus = TorusFlow()
        lattice = LatticeFlow(volume_per_atom, config.flow.lattice_base_std)
    processes = {torus.key: torus, lattice.key: lattice}
    weights = {torus.key: 1.0, lattice.key: config.flow.lattice_weight}
    if config.task == "dng":
        types = MaskedTypeFlow()
        processes[types.key], weights[types.key] = types, config.flow.type_weight
    return FlowModel(Backbone(config.backbone), processes, weights, config.physics)
