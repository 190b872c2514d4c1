"""Batched space-group symmetry for generation: orbits, free parameters, symmetric fields.

Every crystal of a batch carries its operations in its own cell basis (fractional, column
convention x' = R x + t; lattice rows L, Cartesian r = x^T L). Atom j belongs to the orbit of its
representative r(j) and sits at x_j = R_j x_r + t_j; the representative moves only inside its
Wyckoff position, x_r = c_r + W_r a with an integer basis W_r (3, rank) of the free directions and
a on the torus R^rank / Z^rank. The point group fixes the lattice metric: R^T (L L^T) R = L L^T.

A field that is equivariant under the group is unchanged by the projections below, and any field
is mapped onto the equivariant ones, so integrating projected velocities from a symmetric state
keeps every state in the space group exactly.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import Tensor

from periodic._symmat import sym_expm


@dataclass(frozen=True)
class SymmetryTable:
    """The operations of B crystals with N atoms in total and K point-group rotations.

    representative  (N,) int64     global index of each atom's orbit representative
    rotation        (N, 3, 3)      R_j (integer valued)
    translation     (N, 3)         t_j, so that x_j = R_j x_r + t_j exactly (mod 1)
    free_basis      (N, 3, 3)      W of the atom's representative, zero columns past its rank
    point_group     (K, 3, 3)      the distinct rotations of each crystal (integer valued)
    point_group_of  (K,) int64     crystal of each rotation
    """

    representative: Tensor
    rotation: Tensor
    translation: Tensor
    free_basis: Tensor
    point_group: Tensor
    point_group_of: Tensor

    def to(self, dtype: torch.dtype) -> SymmetryTable:
        """A copy with the float fields cast to `dtype`."""
        floats = ("rotation", "translation", "free_basis", "point_group")
        return dataclasses.replace(self, **{f: getattr(self, f).to(dtype) for f in floats})

    @property
    def free_pinv(self) -> Tensor:
        """(N, 3, 3) pseudo-inverse W^+ of each free basis (zero rows past the rank)."""
        return torch.linalg.pinv(self.free_basis)


def crystal_table(table: SymmetryTable, index: int, start: int, count: int) -> SymmetryTable:
    """The table of crystal `index` alone (its atoms are rows start..start + count - 1)."""
    atoms = slice(start, start + count)
    mine = table.point_group_of == index
    return SymmetryTable(
        representative=table.representative[atoms] - start,
        rotation=table.rotation[atoms],
        translation=table.translation[atoms],
        free_basis=table.free_basis[atoms],
        point_group=table.point_group[mine],
        point_group_of=torch.zeros(int(mine.sum()), dtype=torch.long),
    )


def expand_orbits(positions: Tensor, table: SymmetryTable) -> Tensor:
    """(N, 3) positions rebuilt from their representatives' rows: R_j x_r(j) + t_j, mod 1."""
    reps = positions.index_select(0, table.representative)
    return (torch.einsum("nij,nj->ni", table.rotation, reps) + table.translation) % 1.0


def fixed_part(positions: Tensor, table: SymmetryTable) -> Tensor:
    """(N, 3) the part c_r = x_r - W_r W_r^+ x_r of each representative's position that its
    Wyckoff position fixes (rows of an orbit repeat their representative's)."""
    reps = positions.index_select(0, table.representative)
    return reps - torch.einsum("nij,njk,nk->ni", table.free_basis, table.free_pinv, reps)


_SHIFTS = torch.cartesian_prod(*[torch.arange(-3, 4)] * 3)  # (343, 3) integer offsets


def free_parameters(positions: Tensor, fixed: Tensor, table: SymmetryTable) -> Tensor:
    """(N, 3) free parameters a (zero past each rank) with fixed + W a = x_r modulo Z^3.

    Positions wrapped into [0, 1) may have moved a representative by an integer vector k that
    leaves its free subspace; such a k has the off-subspace part of x_r - fixed, and the one
    nearest to it (within 3 per axis) is removed first. Defined modulo 1 (W is a basis of the
    subspace's integer lattice).
    """
    delta = positions.index_select(0, table.representative) - fixed  # (N, 3)
    projector = table.free_basis @ table.free_pinv  # (N, 3, 3)
    outside = delta - torch.einsum("nij,nj->ni", projector, delta)
    shifts = torch.round(outside).unsqueeze(1) + _SHIFTS.to(delta.dtype)  # (N, 343, 3)
    candidates = delta.unsqueeze(1) - shifts
    inside = torch.einsum("nij,nkj->nki", projector, candidates)
    best = (candidates - inside).square().sum(-1).argmin(-1)  # (N,)
    chosen = candidates[torch.arange(len(delta)), best]
    return torch.einsum("nij,nj->ni", table.free_pinv, chosen)


def from_free_parameters(free: Tensor, fixed: Tensor, table: SymmetryTable) -> Tensor:
    """(N, 3) crystal positions (mod 1) with representatives at fixed + W a (see
    `free_parameters`), orbits rebuilt by the operations."""
    return expand_orbits(fixed + torch.einsum("nij,nj->ni", table.free_basis, free), table)


def symmetrize_vectors(vectors: Tensor, table: SymmetryTable) -> Tensor:
    """The equivariant part (N, 3) of a per-atom fractional vector field (N, 3).

    v_r = P_r mean_{j in orbit(r)} R_j^-1 v_j with P_r = W_r W_r^+, then v_j = R_j v_r: the mean
    over the group of the transported field, restricted to each site's free directions.
    """
    back = torch.linalg.solve(table.rotation, vectors.unsqueeze(-1)).squeeze(-1)  # (N, 3)
    total = torch.zeros_like(back).index_add_(0, table.representative, back)
    count = torch.bincount(table.representative, minlength=len(back)).clamp_min(1)
    mean = (total / count.unsqueeze(-1).to(back.dtype)).index_select(0, table.representative)
    projector = table.free_basis @ table.free_pinv  # (N, 3, 3)
    return torch.einsum("nij,njk,nk->ni", table.rotation, projector, mean)


def cartesian_operations(lattice: Tensor, table: SymmetryTable) -> Tensor:
    """(K, 3, 3) Cartesian form C = L^-1 R^T L of each point-group rotation (orthogonal when the
    lattice is symmetric; rows convention: r' = r C)."""
    lat = lattice.index_select(0, table.point_group_of)
    return torch.linalg.solve(lat, table.point_group.mT @ lat)


def symmetrize_lattice_field(field: Tensor, lattice: Tensor, table: SymmetryTable) -> Tensor:
    """The invariant part (B, 3, 3) of a Cartesian symmetric lattice field: mean_g C_g S C_g^T.

    A lattice step L expm(S dt) keeps the lattice's symmetry exactly when S commutes with every
    C_g, which the average ensures.
    """
    ops = cartesian_operations(lattice, table)
    moved = ops @ field.index_select(0, table.point_group_of) @ ops.mT
    total = torch.zeros_like(field).index_add_(0, table.point_group_of, moved)
    count = torch.bincount(table.point_group_of, minlength=len(field)).clamp_min(1)
    return total / count.to(field.dtype).view(-1, 1, 1)


def symmetrize_lattice(lattice: Tensor, table: SymmetryTable) -> Tensor:
    """The nearest lattices (B, 3, 3) with an invariant metric: G' = mean R^T G R and
    L' = G'^(1/2) G^(-1/2) L, G = L L^T (a no-op for a symmetric lattice)."""
    metric = lattice @ lattice.mT
    rot = table.point_group
    moved = rot.mT @ metric.index_select(0, table.point_group_of) @ rot
    total = torch.zeros_like(metric).index_add_(0, table.point_group_of, moved)
    count = torch.bincount(table.point_group_of, minlength=len(metric)).clamp_min(1)
    target = total / count.to(metric.dtype).view(-1, 1, 1)
    return _spd_power(target, 0.5) @ _spd_power(metric, -0.5) @ lattice


def _spd_power(spd: Tensor, power: float) -> Tensor:
    values, vectors = torch.linalg.eigh(spd)
    return (vectors * values.clamp_min(1e-12).pow(power).unsqueeze(-2)) @ vectors.mT


def invariant_cell(table: SymmetryTable, num_crystals: int, dtype: torch.dtype) -> Tensor:
    """(B, 3, 3) unit-volume lattices with each crystal's point group: the Cholesky factor of the
    point-group average of the identity metric, mean_R R^T R, scaled to det 1."""
    rot = table.point_group.to(dtype)
    eye = torch.eye(3, dtype=dtype).expand(num_crystals, 3, 3)
    moved = rot.mT @ rot
    total = torch.zeros_like(eye).index_add_(0, table.point_group_of, moved)
    count = torch.bincount(table.point_group_of, minlength=num_crystals).clamp_min(1)
    metric = total / count.to(dtype).view(-1, 1, 1)
    cell = torch.linalg.cholesky(metric)
    return cell / torch.linalg.det(cell).abs().pow(1 / 3).view(-1, 1, 1)


def symmetric_stretch(
    cell: Tensor, table: SymmetryTable, std: float, generator: torch.Generator
) -> Tensor:
    """cell expm(B'), B' a traceless symmetric Gaussian (entries ~ std) averaged over the
    point group in Cartesian form, so the result keeps the cell's symmetry, (B, 3, 3)."""
    noise = torch.randn(cell.shape, generator=generator, dtype=cell.dtype) * std
    sym = symmetrize_lattice_field(0.5 * (noise + noise.mT), cell, table)
    trace = torch.diagonal(sym, dim1=-2, dim2=-1).sum(-1)
    sym = sym - trace.view(-1, 1, 1) / 3 * torch.eye(3, dtype=cell.dtype)
    return cell @ sym_expm(sym)
