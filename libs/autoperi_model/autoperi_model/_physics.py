"""Physics-informed training terms (SCIENCE.md 4.4), applied to the model's one-step estimate
of the clean crystal.

Minimum distance: per crystal, `sum_e ReLU(d_min(Z_i, Z_j) - r_e) / n` over the directed
periodic edges (i -> j + k) of the estimate, with `d_min = max(0.5 A, scale * (r_i + r_j))`
from covalent radii (ASE's table, Cordero et al. 2008). The default scale 0.6 leaves every
Perov-5 crystal unpenalised (the smallest distance / radius-sum ratio in its training split is
0.667, Cs-N at 2.10 A; tested), so the term only pushes apart atoms that no real crystal puts
that close.
"""

from __future__ import annotations

import torch
from ase.data import covalent_radii
from periodic import edge_vectors, radius_graph
from torch import Tensor

from autoperi_model._batch import CrystalBatch

MIN_DISTANCE_FLOOR = 0.5  # Angstrom, CDVAE's structural validity threshold
MIN_VOLUME_PER_ATOM = 2.0  # A^3: collapsed estimates (early in a path) are skipped, not graphed
_RADII = torch.as_tensor(covalent_radii, dtype=torch.float64)  # (Z_max + 1,), Angstrom


def min_distances(numbers_i: Tensor, numbers_j: Tensor, scale: float) -> Tensor:
    """d_min (E,) for pairs of atomic numbers (E,), (E,)."""
    radii = _RADII.index_select(0, numbers_i) + _RADII.index_select(0, numbers_j)
    return (scale * radii).clamp_min(MIN_DISTANCE_FLOOR)


def min_distance_penalty(estimate: CrystalBatch, scale: float) -> Tensor:
    """Per-crystal penalty (B,) of a batch whose lattice and coordinates carry gradients.

    Crystals with less than MIN_VOLUME_PER_ATOM get 0 (their graphs would be huge and their
    distances meaningless). Edges are found without gradients; their vectors are recomputed
    differentiably.
    """
    n = estimate.num_atoms.to(estimate.lattice.dtype)
    volume = torch.linalg.det(estimate.lattice).abs()
    ok = (volume / n >= MIN_VOLUME_PER_ATOM).detach()
    penalty = estimate.lattice.new_zeros(estimate.num_crystals)
    if not bool(ok.any()):
        return penalty
    kept = _subset(estimate, ok)
    radius = 2 * scale * float(_RADII.index_select(0, kept.atomic_numbers).max())
    radius = max(radius, MIN_DISTANCE_FLOOR) + 1e-6
    with torch.no_grad():
        graph = radius_graph(kept.lattice, kept.frac_coords, radius, num_atoms=kept.num_atoms)
    src, dst = graph.edge_index
    _, lengths = edge_vectors(
        kept.lattice, kept.frac_coords, graph.edge_index, graph.cell_offsets, kept.batch
    )
    d_min = min_distances(kept.atomic_numbers[src], kept.atomic_numbers[dst], scale)
    excess = torch.relu(d_min.to(lengths.dtype) - lengths)  # (E,)
    per_crystal = lengths.new_zeros(kept.num_crystals).index_add_(0, kept.batch[src], excess)
    index = torch.nonzero(ok).squeeze(-1)
    return penalty.index_copy(0, index, per_crystal / kept.num_atoms.to(lengths.dtype))


def _subset(batch: CrystalBatch, keep: Tensor) -> CrystalBatch:
    """The crystals where `keep` (B,) is true, as a batch."""
    atom_keep = keep.index_select(0, batch.batch)
    remap = torch.cumsum(keep.long(), 0) - 1
    return CrystalBatch(
        lattice=batch.lattice[keep],
        frac_coords=batch.frac_coords[atom_keep],
        atomic_numbers=batch.atomic_numbers[atom_keep],
        batch=remap.index_select(0, batch.batch[atom_keep]),
        num_atoms=batch.num_atoms[keep],
    )
