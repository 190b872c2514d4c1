"""Per-field generative processes behind one Protocol (STYLE.md point 4).

A `FieldProcess` owns one field of a `CrystalBatch` (named by `key`, read from the backbone's
output of the same name): it samples the base distribution, builds the path and its target at
time t, scores a prediction and advances the field by one sampler step. Flow matching on the
torus and on the lattice (SCIENCE.md 4.1) are the two implementations here; a diffusion process
drops in as another implementation of the same Protocol.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from periodic import keys, polar_log_stretch, sym_expm, wrap, wrap_delta
from torch import Tensor

from autoperi_model._batch import CrystalBatch


@runtime_checkable
class FieldProcess(Protocol):
    """How one field is generated. `t` is per crystal, (B,), in [0, 1] (0: base, 1: data)."""

    key: str

    def sample_base(self, batch: CrystalBatch, generator: torch.Generator) -> Tensor:
        """A base sample of the field, shaped like `getattr(batch, key)`."""
        ...

    def interpolate(
        self, x0: Tensor, x1: Tensor, t: Tensor, batch: CrystalBatch
    ) -> tuple[Tensor, Tensor]:
        """The state x_t on the path from x0 to x1 and the regression target at x_t."""
        ...

    def project(self, raw: Tensor, batch: CrystalBatch) -> Tensor:
        """The backbone's raw output turned into this field's velocity (e.g. remove a gauge)."""
        ...

    def loss(self, pred: Tensor, target: Tensor, batch: CrystalBatch) -> Tensor:
        """Per-crystal loss, (B,)."""
        ...

    def step(self, x: Tensor, velocity: Tensor, dt: float, batch: CrystalBatch) -> Tensor:
        """x advanced along `velocity` for time dt."""
        ...


def crystal_mean(values: Tensor, batch: CrystalBatch) -> Tensor:
    """Per-crystal mean of per-atom rows, (B, ...)."""
    total = values.new_zeros((batch.num_crystals, *values.shape[1:]))
    total = total.index_add_(0, batch.batch, values)
    return total / batch.num_atoms.to(values.dtype).view(-1, *[1] * (values.dim() - 1))


class TorusFlow:
    """Fractional coordinates on the flat torus: x_t = (x0 + t u) mod 1, u = wrap(x1 - x0).

    Target and prediction have their per-crystal mean removed (translation gauge).
    """

    key = keys.FRAC_COORDS

    def sample_base(self, batch: CrystalBatch, generator: torch.Generator) -> Tensor:
        shape, dtype = batch.frac_coords.shape, batch.frac_coords.dtype
        return torch.rand(shape, generator=generator, dtype=dtype)  # (N, 3)

    def interpolate(
        self, x0: Tensor, x1: Tensor, t: Tensor, batch: CrystalBatch
    ) -> tuple[Tensor, Tensor]:
        u = wrap_delta(x1 - x0)  # (N, 3)
        x_t = wrap(x0 + t.index_select(0, batch.batch).unsqueeze(-1) * u)
        return x_t, self.project(u, batch)

    def project(self, raw: Tensor, batch: CrystalBatch) -> Tensor:
        return raw - crystal_mean(raw, batch).index_select(0, batch.batch)

    def loss(self, pred: Tensor, target: Tensor, batch: CrystalBatch) -> Tensor:
        per_atom = (pred - target).square().sum(-1)  # (N,)
        return crystal_mean(per_atom, batch)

    def step(self, x: Tensor, velocity: Tensor, dt: float, batch: CrystalBatch) -> Tensor:
        return wrap(x + dt * velocity)


class LatticeFlow:
    """Lattice flow in GL3/O(3): L_t = L0 expm(t log U), log U = 0.5 logm(F F^T), F = L0^-1 L1.

    Rows are lattice vectors, so L1 = L0 F and F = U R gives L0 U = L1 R^T: the path ends at a
    rotation of L1 (the same crystal). The velocity is the symmetric Cartesian matrix log U,
    constant along the path (dL_t/dt = L_t log U). Base: L0 = s expm(B), B symmetric traceless
    Gaussian (std `base_std`), s^3 = volume_per_atom * n.
    """

    key = keys.LATTICE

    def __init__(self, volume_per_atom: float, base_std: float) -> None:
        self.volume_per_atom = volume_per_atom
        self.base_std = base_std

    def sample_base(self, batch: CrystalBatch, generator: torch.Generator) -> Tensor:
        dtype, n_cryst = batch.lattice.dtype, batch.num_crystals
        noise = torch.randn((n_cryst, 3, 3), generator=generator, dtype=dtype) * self.base_std
        sym = 0.5 * (noise + noise.mT)
        trace = torch.diagonal(sym, dim1=-2, dim2=-1).sum(-1)
        sym = sym - trace.view(-1, 1, 1) / 3 * torch.eye(3, dtype=dtype)
        scale = (self.volume_per_atom * batch.num_atoms.to(dtype)) ** (1 / 3)
        return scale.view(-1, 1, 1) * sym_expm(sym)  # (B, 3, 3)

    def interpolate(
        self, x0: Tensor, x1: Tensor, t: Tensor, batch: CrystalBatch
    ) -> tuple[Tensor, Tensor]:
        log_u = polar_log_stretch(torch.linalg.solve(x0, x1))  # (B, 3, 3)
        return x0 @ sym_expm(t.view(-1, 1, 1) * log_u), log_u

    def project(self, raw: Tensor, batch: CrystalBatch) -> Tensor:
        return 0.5 * (raw + raw.mT)

    def loss(self, pred: Tensor, target: Tensor, batch: CrystalBatch) -> Tensor:
        return (pred - target).square().sum((-2, -1))

    def step(self, x: Tensor, velocity: Tensor, dt: float, batch: CrystalBatch) -> Tensor:
        return x @ sym_expm(dt * velocity)
