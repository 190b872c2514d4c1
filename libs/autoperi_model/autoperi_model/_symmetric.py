"""Flow matching inside a space group (SCIENCE.md 4.6): Wyckoff free parameters and the lattice
restricted to the group's invariant metrics, so every state is exactly symmetric.

The batch carries each crystal's operations (`CrystalBatch.symmetry`, a `periodic.SymmetryTable`).
Positions: the representatives move as x_r = c_r + W_r a, with a on the torus R^rank / Z^rank;
the base draws a ~ U[0, 1)^rank around the fixed part c_r of the batch's own positions (the data at
training, a template at sampling), the path is a_t = a_0 + t wrap(a_1 - a_0), and the orbits are
rebuilt by the group's operations. Predictions are projected onto the equivariant fields. Lattice:
the base is the point group's invariant unit cell, stretched by an invariant random matrix and
scaled to the expected volume; the path is `LatticeFlow`'s, which stays symmetric because log U
commutes with the Cartesian operations of a symmetric L0 and L1.
"""

from __future__ import annotations

import torch
from periodic import (
    SymmetryTable,
    expand_orbits,
    fixed_part,
    free_parameters,
    from_free_parameters,
    invariant_cell,
    symmetric_stretch,
    symmetrize_lattice,
    symmetrize_lattice_field,
    symmetrize_vectors,
    wrap_delta,
)
from torch import Tensor

from autoperi_model._batch import CrystalBatch
from autoperi_model._fields import LatticeFlow, TorusFlow, isotropic_scale, remove_mean


def _table(batch: CrystalBatch) -> SymmetryTable:
    if batch.symmetry is None:
        raise ValueError("a symmetric flow needs a batch with symmetry operations")
    return batch.symmetry.to(batch.lattice.dtype)


class SymmetricTorusFlow(TorusFlow):
    """Positions as Wyckoff free parameters on their tori; orbits rebuilt by the operations."""

    def sample_base(self, batch: CrystalBatch, generator: torch.Generator) -> Tensor:
        table = _table(batch)
        fixed = fixed_part(batch.frac_coords, table)
        free = torch.rand(fixed.shape, generator=generator, dtype=fixed.dtype)
        return from_free_parameters(free, fixed, table)  # (N, 3)

    def interpolate(
        self, x0: Tensor, x1: Tensor, t: Tensor, batch: CrystalBatch
    ) -> tuple[Tensor, Tensor]:
        table = _table(batch)
        fixed = fixed_part(x1, table)
        a0, a1 = free_parameters(x0, fixed, table), free_parameters(x1, fixed, table)
        step = wrap_delta(a1 - a0)  # (N, 3), zero past each rank
        a_t = a0 + t.index_select(0, batch.batch).unsqueeze(-1) * step
        velocity = torch.einsum("nij,njk,nk->ni", table.rotation, table.free_basis, step)
        return from_free_parameters(a_t, fixed, table), self.project(velocity, batch)

    def project(self, raw: Tensor, batch: CrystalBatch) -> Tensor:
        return remove_mean(symmetrize_vectors(raw, _table(batch)), batch)

    def clean_estimate(self, x: Tensor, pred: Tensor, t: Tensor, batch: CrystalBatch) -> Tensor:
        return expand_orbits(super().clean_estimate(x, pred, t, batch), _table(batch))

    def step(self, x: Tensor, velocity: Tensor, t: Tensor, dt: float, batch, generator) -> Tensor:
        return expand_orbits(x + dt * velocity, _table(batch))


class SymmetricLatticeFlow(LatticeFlow):
    """`LatticeFlow` from an invariant base, with invariant velocities and exact steps."""

    def sample_base(self, batch: CrystalBatch, generator: torch.Generator) -> Tensor:
        table, dtype = _table(batch), batch.lattice.dtype
        cell = invariant_cell(table, batch.num_crystals, dtype)
        stretched = symmetric_stretch(cell, table, self.base_std, generator)
        scale = isotropic_scale(self.volume_per_atom, batch, dtype)
        return scale.view(-1, 1, 1) * stretched  # (B, 3, 3)

    def interpolate(
        self, x0: Tensor, x1: Tensor, t: Tensor, batch: CrystalBatch
    ) -> tuple[Tensor, Tensor]:
        x_t, log_u = super().interpolate(x0, x1, t, batch)
        return x_t, symmetrize_lattice_field(log_u, x0, _table(batch))

    def project(self, raw: Tensor, batch: CrystalBatch) -> Tensor:
        return symmetrize_lattice_field(super().project(raw, batch), batch.lattice, _table(batch))

    def step(self, x: Tensor, velocity: Tensor, t: Tensor, dt: float, batch, generator) -> Tensor:
        return symmetrize_lattice(super().step(x, velocity, t, dt, batch, generator), _table(batch))
