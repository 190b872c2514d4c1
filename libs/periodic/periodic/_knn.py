"""Periodic k-nearest-neighbour graph: the K nearest images j + k of each atom i.

The search grows a per-crystal radius until every atom of the crystal has at least K images
strictly inside it (or the radius reaches ``max_radius``); then the K nearest are exact. Order
and ties are deterministic: per source atom, edges are ranked by distance rounded to
``TIE_RESOLUTION`` Angstrom, then by target index j, then by image k lexicographically, so the
result does not depend on the order in which the radius search returns edges.
"""

import math

import torch
from torch import Tensor

from periodic._batching import BatchLayout, batch_layout, select_crystals
from periodic._lattice import volume
from periodic._order import lexsort
from periodic._radius import PeriodicGraph, cutoff_per_crystal, edge_vectors, find_edges

TIE_RESOLUTION = 1e-9  # Angstrom: distances closer than this are ties, broken by (j, k)
_GROWTH = 1.5  # radius factor between rounds of the search
_FIRST_GUESS = 1.3  # first radius relative to the sphere holding K + 1 atoms at the mean density


def knn_graph(
    lattice: Tensor,
    frac_coords: Tensor,
    k: int,
    num_atoms: Tensor | None = None,
    batch: Tensor | None = None,
    max_radius: float | None = None,
) -> PeriodicGraph:
    """The ``k`` nearest periodic images of every atom, optionally only those within ``max_radius``.

    Arguments are those of :func:`periodic.radius_graph`. Source atom i has exactly ``k`` edges
    (fewer only when ``max_radius`` cuts them); self-images (i, i, k != 0) count, (i, i, 0) never.
    Edges are sorted by source, then by rank (nearest first).
    """
    if k < 1:
        raise ValueError(f"k must be a positive number of neighbours, got {k}")
    layout = batch_layout(lattice, frac_coords, num_atoms, batch)
    edge_index, offsets, lengths = _search_until_full(layout, frac_coords, k, max_radius)
    order = _nearest_first(edge_index, offsets, lengths, k, frac_coords.shape[0])
    edge_index, offsets = edge_index[:, order], offsets[order]
    vectors, lengths = edge_vectors(layout.lattice, frac_coords, edge_index, offsets, layout.batch)
    return PeriodicGraph(edge_index, offsets, vectors, lengths)


def _search_until_full(
    layout: BatchLayout,
    frac_coords: Tensor,
    k: int,
    max_radius: float | None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Radius-graph edges of each crystal at the first radius that gives every atom k images:
    index (2, E), offsets (E, 3), float64 lengths (E,).
    """
    lat64 = layout.lattice.detach().to(torch.float64)
    per_atom = volume(lat64) / layout.num_atoms.clamp_min(1)
    radius = _FIRST_GUESS * (3.0 * (k + 1) * per_atom / (4.0 * math.pi)) ** (1.0 / 3.0)
    if max_radius is not None:
        radius = radius.clamp_max(float(cutoff_per_crystal(max_radius, 1)[0]))
    pending = layout.num_atoms > 0
    found: list[tuple[Tensor, Tensor, Tensor]] = []
    while bool(pending.any()):
        sub, sub_frac, atom_ids = select_crystals(layout, frac_coords, pending)
        edges = find_edges(sub, sub_frac, radius[pending], with_vectors=False)
        index, offsets = edges.edge_index, edges.cell_offsets
        src = index[0]
        degree = torch.bincount(src, minlength=sub_frac.shape[0])
        short = torch.zeros(sub.num_atoms.shape[0], dtype=torch.bool, device=src.device)
        short.index_put_((sub.batch,), degree < k, accumulate=True)
        if max_radius is not None:
            short &= radius[pending] < max_radius
        done = ~short.index_select(0, sub.batch.index_select(0, src))
        found.append((atom_ids[index[:, done]], offsets[done], edges.edge_lengths[done]))
        still = torch.zeros_like(pending)
        still[torch.nonzero(pending).squeeze(-1)[short]] = True
        radius = torch.where(still, radius * _GROWTH, radius)
        if max_radius is not None:
            radius = radius.clamp_max(max_radius)
        pending = still
    if not found:
        empty = torch.zeros(0, dtype=torch.long, device=frac_coords.device)
        return empty.view(2, 0), empty.view(0, 3), empty.double()
    indices, offsets, lengths = zip(*found, strict=True)
    return torch.cat(indices, dim=1), torch.cat(offsets), torch.cat(lengths)


def _nearest_first(
    edge_index: Tensor, offsets: Tensor, lengths: Tensor, k: int, n_atoms: int
) -> Tensor:
    """Indices of the k best edges per source, sorted by (source, rounded distance, j, image)."""
    rounded = torch.round(lengths / TIE_RESOLUTION).long()
    order = lexsort([*_tie_keys(edge_index[1], offsets), *_rank_keys(edge_index[0], rounded)])
    src = edge_index[0, order]
    counts = torch.bincount(src, minlength=n_atoms)
    first = torch.cumsum(counts, 0) - counts
    rank = torch.arange(order.shape[0], device=src.device) - first.index_select(0, src)
    return order[rank < k]


def _tie_keys(target: Tensor, offsets: Tensor) -> list[Tensor]:
    """Keys for (j, k_a, k_b, k_c), least significant first: one packed key when it fits int64."""
    if target.numel() == 0:
        return [target]
    reach = int(offsets.abs().max()) + 1
    width = 2 * reach + 1
    if (int(target.max()) + 1) * width**3 < 2**62:
        shifted = offsets + reach
        return [((target * width + shifted[:, 0]) * width + shifted[:, 1]) * width + shifted[:, 2]]
    return [offsets[:, 2], offsets[:, 1], offsets[:, 0], target]


def _rank_keys(source: Tensor, rounded: Tensor) -> list[Tensor]:
    """Keys for (i, rounded distance), least significant first: packed when it fits int64."""
    if source.numel() == 0:
        return [source]
    span = int(rounded.max()) + 1
    if (int(source.max()) + 1) * span < 2**62:
        return [source * span + rounded]
    return [rounded, source]
