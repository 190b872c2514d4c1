"""The periodic graph of the current (noisy) state: periodic's radius graph, capped per atom.

The cap keeps about the `max_neighbors` nearest edges of each source atom (whole shells of tied
lengths, see `cap_neighbors`). Nearest-first capping bounds the cost of collapsed noisy states
while a 5-atom cell still sees its whole first and second shells.
"""

from __future__ import annotations

import torch
from periodic import PeriodicGraph, edge_vectors, radius_graph
from torch import Tensor

from autoperi_model._batch import CrystalBatch

TIE_TOLERANCE = 1e-4


def cap_neighbors(graph: PeriodicGraph, num_nodes: int, max_neighbors: int) -> Tensor:
    """Indices (E',) of the edges of each source atom no longer than its `max_neighbors`-th
    shortest edge (times 1 + TIE_TOLERANCE), in the graph's order.

    Whole shells of (near-)equal length are kept or dropped together, so the selection does not
    depend on the order of tied edges (e.g. the images +k and -k of an atom, or the 24 equal
    second-shell anions of an ideal perovskite): the graph stays a function of the geometry,
    which keeps the model exactly GL3(Z)- and permutation-equivariant.
    """
    src, lengths = graph.edge_index[0], graph.edge_lengths.detach()
    order = torch.argsort(lengths, stable=True)
    order = order.index_select(0, torch.argsort(src.index_select(0, order), stable=True))
    counts = torch.bincount(src, minlength=num_nodes)  # (num_nodes,)
    first = torch.cumsum(counts, 0) - counts
    last = first + counts.clamp_max(max_neighbors) - 1
    has_edges = counts > 0
    bound = torch.zeros(num_nodes, dtype=lengths.dtype)
    bound[has_edges] = lengths.index_select(0, order.index_select(0, last[has_edges]))
    keep = lengths <= bound.index_select(0, src) * (1 + TIE_TOLERANCE)
    return torch.nonzero(keep).squeeze(-1)


def build_graph(batch: CrystalBatch, cutoff: float, max_neighbors: int) -> PeriodicGraph:
    """Edges (i -> j + k) shorter than `cutoff`, at most `max_neighbors` per atom, with
    differentiable vectors `(x_j + k - x_i) @ L` (E, 3) and lengths (E,).
    """
    with torch.no_grad():
        full = radius_graph(batch.lattice, batch.frac_coords, cutoff, num_atoms=batch.num_atoms)
        keep = cap_neighbors(full, batch.frac_coords.shape[0], max_neighbors)
    edge_index = full.edge_index.index_select(1, keep)
    offsets = full.cell_offsets.index_select(0, keep)
    vectors, lengths = edge_vectors(
        batch.lattice, batch.frac_coords, edge_index, offsets, batch.batch
    )
    return PeriodicGraph(edge_index, offsets, vectors, lengths)


SOFT_REACH = 1.25  # smooth neighbour weights reach this many times the K-th neighbour distance


def smoothstep(x: Tensor) -> Tensor:
    """x^3 (10 - 15 x + 6 x^2) on [0, 1] (clamped): 0 -> 0, 1 -> 1, flat (C2) at both ends."""
    x = x.clamp(0.0, 1.0)
    return x**3 * (10 - 15 * x + 6 * x**2)


def smooth_graph(batch: CrystalBatch, cutoff: float, k: int) -> tuple[PeriodicGraph, Tensor]:
    """Edges shorter than each source atom's reach, with weights (E,) in [0, 1].

    With d_K the K-th shortest edge of the source (k = K), reach = min(SOFT_REACH d_K, cutoff);
    the weight is 1 up to reach / SOFT_REACH and falls smoothly to 0 at the reach. d_K is a
    continuous function of the geometry, so weighted sums over the graph are continuous in the
    positions and the lattice (no edge appears or vanishes with a nonzero weight).
    """
    with torch.no_grad():
        full = radius_graph(batch.lattice, batch.frac_coords, cutoff, num_atoms=batch.num_atoms)
        src, lengths = full.edge_index[0], full.edge_lengths
        n = batch.frac_coords.shape[0]
        order = torch.argsort(lengths, stable=True)
        order = order.index_select(0, torch.argsort(src.index_select(0, order), stable=True))
        counts = torch.bincount(src, minlength=n)
        first = torch.cumsum(counts, 0) - counts
        kth = first + counts.clamp_max(k) - 1
        d_k = torch.full((n,), cutoff, dtype=lengths.dtype)
        has = counts >= k
        d_k[has] = lengths.index_select(0, order.index_select(0, kth[has]))
        reach = (SOFT_REACH * d_k).clamp_max(cutoff)
        keep = torch.nonzero(lengths < reach.index_select(0, src)).squeeze(-1)
    edge_index = full.edge_index.index_select(1, keep)
    offsets = full.cell_offsets.index_select(0, keep)
    vectors, lengths = edge_vectors(
        batch.lattice, batch.frac_coords, edge_index, offsets, batch.batch
    )
    edge_reach = reach.index_select(0, edge_index[0])
    weight = smoothstep((edge_reach - lengths) / (edge_reach * (1 - 1 / SOFT_REACH)))
    return PeriodicGraph(edge_index, offsets, vectors, lengths), weight


LATTICE_REACH = 1.8  # lattice vectors are searched up to this many times V^(1/3)


def shortest_lattice_vectors(lattice: Tensor, count: int) -> PeriodicGraph:
    """About the `count` shortest nonzero lattice vectors k @ L of each crystal (whole shells of
    tied lengths), as a graph over crystals: edge_index[0] is the crystal, edge_vectors (E, 3).

    A function of the lattice as a point set only, so it is invariant under changes of basis and
    its vectors rotate with the crystal. Searched within LATTICE_REACH * V^(1/3).
    """
    n = lattice.shape[0]
    reach = LATTICE_REACH * torch.linalg.det(lattice.detach()).abs() ** (1 / 3)
    origin = lattice.new_zeros(n, 3)
    ones = torch.ones(n, dtype=torch.long)
    with torch.no_grad():
        full = radius_graph(lattice, origin, reach, num_atoms=ones)
        keep = cap_neighbors(full, n, count)
    edge_index = full.edge_index.index_select(1, keep)
    offsets = full.cell_offsets.index_select(0, keep)
    batch = torch.arange(n)
    vectors, lengths = edge_vectors(lattice, origin, edge_index, offsets, batch)
    return PeriodicGraph(edge_index, offsets, vectors, lengths)
