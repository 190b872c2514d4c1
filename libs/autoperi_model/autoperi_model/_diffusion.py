"""GemsDiff-style diffusion on torus x lattice (SCIENCE.md 4.2), on the generic core.

Time runs as in the flows: t = 0 is pure noise, t = 1 is data. The network predicts the clean
sample, as the displacement from the current state to it:
  * positions: wrapped normal on the flat torus, x_t = wrap(x1 + sigma(t) eps) with
    sigma(t) = sigma_max^(1 - t) sigma_min^t (variance exploding). Target: the shortest-path
    displacement wrap(x1 - x_t) to the clean positions, mean-free (GemsDiff eq. 20, DiffCSP).
  * lattice: L = s expm(c), with s^3 = volume_per_atom * n and c in the 6-d symmetric part of the
    Lie algebra of GL3 (5 shape + 1 volume; rotation is the gauge fixed by the polar
    decomposition: c1 = log U of L1 / s). Variance preserving, c_t = sqrt(abar) c1 +
    sqrt(1 - abar) sigma_L E with abar(t) = sin^2(pi t / 2). Target: the Cartesian log-stretch
    that takes L_t to (a rotation of) L1, which the equivariant lattice field can express.
Sampling is DDPM ancestral: each step forms the clean estimate and draws from the Gaussian
posterior q(x_s | x_t, x1_hat); the last step returns the clean estimate itself (NFE = steps).
"""

from __future__ import annotations

import math

import torch
from periodic import keys, polar_log_stretch, sym_expm, sym_logm, wrap, wrap_delta
from torch import Tensor

from autoperi_model._backbone import Backbone
from autoperi_model._batch import CrystalBatch
from autoperi_model._config import Config
from autoperi_model._fields import crystal_mean, isotropic_scale, random_symmetric, remove_mean
from autoperi_model._model import GenerativeModel


def _per_atom(values: Tensor, batch: CrystalBatch) -> Tensor:
    return values.index_select(0, batch.batch).unsqueeze(-1)  # (N, 1)


class TorusDiffusion:
    """Variance-exploding wrapped-normal diffusion of fractional coordinates."""

    key = keys.FRAC_COORDS

    def __init__(self, sigma_min: float, sigma_max: float, loss_floor: float) -> None:
        self.sigma_min, self.sigma_max, self.loss_floor = sigma_min, sigma_max, loss_floor

    def sigma(self, t: Tensor) -> Tensor:
        """Noise level (B,) at times t (B,)."""
        return self.sigma_max ** (1 - t) * self.sigma_min**t

    def sample_base(self, batch: CrystalBatch, generator: torch.Generator) -> Tensor:
        shape, dtype = batch.frac_coords.shape, batch.frac_coords.dtype
        return torch.rand(shape, generator=generator, dtype=dtype)  # (N, 3)

    def corrupt(
        self, x1: Tensor, t: Tensor, batch: CrystalBatch, generator: torch.Generator
    ) -> tuple[Tensor, Tensor]:
        noise = torch.randn(x1.shape, generator=generator, dtype=x1.dtype)
        x_t = wrap(x1 + _per_atom(self.sigma(t), batch) * noise)
        return x_t, remove_mean(wrap_delta(x1 - x_t), batch)

    def project(self, raw: Tensor, batch: CrystalBatch) -> Tensor:
        return remove_mean(raw, batch)

    def loss(self, pred: Tensor, target: Tensor, t: Tensor, batch: CrystalBatch) -> Tensor:
        scale = self.sigma(t).clamp_min(self.loss_floor) ** 2  # (B,)
        return crystal_mean((pred - target).square().sum(-1), batch) / scale

    def clean_estimate(self, x: Tensor, pred: Tensor, t: Tensor, batch: CrystalBatch) -> Tensor:
        return x + pred

    def reverse_step(
        self, x: Tensor, pred: Tensor, t: float, t_next: float, batch, generator
    ) -> Tensor:
        """Posterior draw at t_next given x at t and the predicted displacement to x1."""
        if t_next >= 1.0:
            return wrap(x + pred)
        ratio = (self.sigma_max ** (t - t_next) * self.sigma_min ** (t_next - t)) ** 2
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype)
        sigma_next = self.sigma_max ** (1 - t_next) * self.sigma_min**t_next
        return wrap(x + (1 - ratio) * pred + sigma_next * math.sqrt(1 - ratio) * noise)


class LatticeDiffusion:
    """Variance-preserving diffusion of the lattice's symmetric log-stretch c (L = s expm(c))."""

    key = keys.LATTICE

    def __init__(self, volume_per_atom: float, sigma: float) -> None:
        self.volume_per_atom, self.sigma = volume_per_atom, sigma

    @staticmethod
    def alpha_bar(t: Tensor | float) -> Tensor:
        """Signal fraction abar(t) = sin^2(pi t / 2): 0 at t = 0 (noise), 1 at t = 1 (data)."""
        return torch.sin(torch.as_tensor(t, dtype=torch.float64) * math.pi / 2) ** 2

    def _scale(self, batch: CrystalBatch, dtype: torch.dtype) -> Tensor:
        return isotropic_scale(self.volume_per_atom, batch, dtype).view(-1, 1, 1)

    def to_coefficients(self, lattice: Tensor, batch: CrystalBatch) -> Tensor:
        """c (B, 3, 3) symmetric with s expm(c) = a rotation of `lattice` (B, 3, 3)."""
        return polar_log_stretch(lattice / self._scale(batch, lattice.dtype))

    def from_coefficients(self, c: Tensor, batch: CrystalBatch) -> Tensor:
        return self._scale(batch, c.dtype) * sym_expm(c)

    def sample_base(self, batch: CrystalBatch, generator: torch.Generator) -> Tensor:
        c = random_symmetric(batch.num_crystals, self.sigma, generator, batch.lattice.dtype)
        return self.from_coefficients(c, batch)

    def corrupt(
        self, x1: Tensor, t: Tensor, batch: CrystalBatch, generator: torch.Generator
    ) -> tuple[Tensor, Tensor]:
        c1 = self.to_coefficients(x1, batch)
        abar = self.alpha_bar(t).to(x1.dtype).view(-1, 1, 1)
        noise = random_symmetric(batch.num_crystals, self.sigma, generator, x1.dtype)
        c_t = abar.sqrt() * c1 + (1 - abar).sqrt() * noise
        return self.from_coefficients(c_t, batch), self._stretch_between(c_t, c1)

    @staticmethod
    def _stretch_between(c_from: Tensor, c_to: Tensor) -> Tensor:
        """Cartesian log-stretch S with expm(c_from) expm(S) = expm(c_to) R, R a rotation."""
        return polar_log_stretch(sym_expm(-c_from) @ sym_expm(c_to))

    def project(self, raw: Tensor, batch: CrystalBatch) -> Tensor:
        return 0.5 * (raw + raw.mT)

    def loss(self, pred: Tensor, target: Tensor, t: Tensor, batch: CrystalBatch) -> Tensor:
        return (pred - target).square().sum((-2, -1))

    def clean_estimate(self, x: Tensor, pred: Tensor, t: Tensor, batch: CrystalBatch) -> Tensor:
        return x @ sym_expm(pred)

    def reverse_step(
        self, x: Tensor, pred: Tensor, t: float, t_next: float, batch, generator
    ) -> Tensor:
        """DDPM posterior draw of c at t_next given c_t and the clean estimate of c1."""
        c1_hat = self.to_coefficients(x @ sym_expm(pred), batch)
        if t_next >= 1.0:
            return self.from_coefficients(c1_hat, batch)
        c_t = sym_logm(x / self._scale(batch, x.dtype))  # x is s expm(c_t), symmetric
        abar_t, abar_s = float(self.alpha_bar(t)), float(self.alpha_bar(t_next))
        alpha = abar_t / abar_s  # of the step from t_next to t
        mean = math.sqrt(abar_s) * (1 - alpha) * c1_hat + math.sqrt(alpha) * (1 - abar_s) * c_t
        mean = mean / (1 - abar_t)
        std = math.sqrt((1 - alpha) * (1 - abar_s) / (1 - abar_t))
        noise = random_symmetric(batch.num_crystals, self.sigma, generator, x.dtype)
        return self.from_coefficients(mean + std * noise, batch)


class DiffusionModel(GenerativeModel):
    """Diffusion on torus x lattice; predictions are displacements to the clean sample."""

    samplers = ("ddpm",)

    @torch.no_grad()
    def sample(
        self,
        template: CrystalBatch,
        steps: int,
        sampler: str,
        generator: torch.Generator,
        anneal: dict[str, float] | None = None,
    ) -> tuple[CrystalBatch, int]:
        """DDPM ancestral sampling in `steps` uniform steps from t = 0 to 1; NFE = steps.

        `anneal` is accepted for the Generator's uniform call and must be empty.
        """
        if steps < 1 or sampler not in self.samplers:
            raise ValueError(f"need steps >= 1 and sampler ddpm, got {steps}, {sampler!r}")
        if anneal:
            raise ValueError("anneal applies to flow models only")
        state = template.replace(
            **{k: p.sample_base(template, generator) for k, p in self.processes.items()}
        )
        return self.sample_from(state, steps, sampler, generator)

    @torch.no_grad()
    def sample_from(
        self,
        state: CrystalBatch,
        steps: int,
        sampler: str,
        generator: torch.Generator,
        anneal: dict[str, float] | None = None,
        allowed_types: Tensor | None = None,
    ) -> tuple[CrystalBatch, int]:
        """DDPM ancestral steps from a base state drawn beforehand (`draw_base`); the reverse
        steps' noise comes from `generator`. NFE = steps. `anneal` and `allowed_types` are
        accepted for a uniform call and must be empty (diffusion is CSP only)."""
        if steps < 1 or sampler not in self.samplers:
            raise ValueError(f"need steps >= 1 and sampler ddpm, got {steps}, {sampler!r}")
        if anneal or allowed_types is not None:
            raise ValueError("anneal and type restrictions apply to flow models only")
        for i in range(steps):
            t, t_next = i / steps, (i + 1) / steps
            times = torch.full((state.num_crystals,), t, dtype=state.lattice.dtype)
            pred = self.predictions(state, times)
            moved = {
                k: p.reverse_step(getattr(state, k), pred[k], t, t_next, state, generator)
                for k, p in self.processes.items()
            }
            state = state.replace(**moved)
        return state, steps


def build_diffusion_model(config: Config, volume_per_atom: float) -> DiffusionModel:
    """The CSP diffusion model of a config (`process: diffusion`)."""
    cfg = config.diffusion
    torus = TorusDiffusion(cfg.sigma_min, cfg.sigma_max, cfg.loss_sigma_floor)
    lattice = LatticeDiffusion(volume_per_atom, cfg.lattice_sigma)
    return DiffusionModel(
        Backbone(config.backbone),
        {torus.key: torus, lattice.key: lattice},
        {torus.key: 1.0, lattice.key: config.flow.lattice_weight},
        config.physics,
    )
