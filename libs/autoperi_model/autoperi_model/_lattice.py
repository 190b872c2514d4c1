"""EMPNN's lattice tasks (SCIENCE.md 4.5) as a lattice-only flow: positions and types given.

`task: lattice` trains `LatticeRestoreFlow`, the lattice flow of `_fields` with a base that
depends on the data: per crystal, either the crystal's lattice deformed as L expm(A), A a
symmetric Gaussian matrix (denoising), or the cube of the crystal's own volume (reconstruction
from a cubic cell). Restoring a lattice integrates that flow from the given cell at t = 0 to
t = 1 (`FlowModel.integrate`); `deform` draws the random deformations of the evaluation.
"""

from __future__ import annotations

import torch
from periodic import sym_expm
from torch import Tensor

from autoperi_model._batch import CrystalBatch
from autoperi_model._fields import LatticeFlow, random_symmetric, traceless_stretch


def deform(lattice: Tensor, std: float, generator: torch.Generator) -> Tensor:
    """L expm(A) for lattices (B, 3, 3), A symmetric Gaussian with entries of std `std`."""
    sym = random_symmetric(lattice.shape[0], std, generator, lattice.dtype)
    return lattice @ sym_expm(sym)


def volume_cube(lattice: Tensor) -> Tensor:
    """The cube (B, 3, 3) with the volume |det L| of each lattice (B, 3, 3)."""
    edge = torch.linalg.det(lattice).abs() ** (1 / 3)
    return edge.view(-1, 1, 1) * torch.eye(3, dtype=lattice.dtype)


class LatticeRestoreFlow(LatticeFlow):
    """Flow from a deformed or cubic cell back to the data lattice (rows a, b, c; Angstrom).

    Base for training (`corrupt`): with probability `cubic_share` the cube of the crystal's
    volume stretched by expm(B), B traceless symmetric Gaussian of std `base_std`
    (reconstruction), else L1 expm(A), A symmetric Gaussian of std `deform_std` (denoising).
    `sample_base` gives the cube of the template lattice's volume: sampling reconstructs.
    """

    def __init__(self, deform_std: float, cubic_share: float, base_std: float) -> None:
        super().__init__(volume_per_atom=1.0, base_std=base_std)
        if not 0.0 <= cubic_share <= 1.0:
            raise ValueError(f"cubic_share must lie in [0, 1], got {cubic_share}")
        self.deform_std = deform_std
        self.cubic_share = cubic_share

    def _stretched_cube(self, lattice: Tensor, generator: torch.Generator) -> Tensor:
        stretch = traceless_stretch(lattice.shape[0], self.base_std, generator, lattice.dtype)
        return volume_cube(lattice) @ stretch

    def sample_base(self, batch: CrystalBatch, generator: torch.Generator) -> Tensor:
        return self._stretched_cube(batch.lattice, generator)

    def corrupt(
        self, x1: Tensor, t: Tensor, batch: CrystalBatch, generator: torch.Generator
    ) -> tuple[Tensor, Tensor]:
        cubic = torch.rand(x1.shape[0], generator=generator) < self.cubic_share
        deformed = deform(x1, self.deform_std, generator)
        x0 = torch.where(cubic.view(-1, 1, 1), self._stretched_cube(x1, generator), deformed)
        return self.interpolate(x0, x1, t, batch)
