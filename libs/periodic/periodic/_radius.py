"""Periodic radius graph of a batch of crystals (SCIENCE.md section 2, EMPNN Definition 6).

Edge ``(i, j, k)`` for every atom pair of a crystal (``i == j`` included) and image ``k`` in Z^3
with ``|(x_j + k - x_i) @ L| < r_c``, except the atom itself ``(i, i, 0)``. The neighbour search
(``periodic._search``, ``periodic._expand``) runs without gradients in float64 and also yields the
edge vectors; when the lattice or the coordinates require gradients, the vectors are recomputed
from the indices and offsets with the caller's tensors instead, so they are differentiable (the
reverse of an edge has the opposite vector).
"""

from typing import NamedTuple

import torch
from torch import Tensor

from periodic._batching import BatchLayout, batch_layout
from periodic._expand import Edges, expand
from periodic._search import crystal_heights, search_lattice_points, search_pairs


class PeriodicGraph(NamedTuple):
    """A periodic multigraph; edge e goes from atom ``i = edge_index[0, e]`` to the image
    ``k = cell_offsets[e]`` of atom ``j = edge_index[1, e]``.
    """

    edge_index: Tensor  # (2, E) int64 | [source i, target j], global atom indices
    cell_offsets: Tensor  # (E, 3) int64 | image k of the target atom
    edge_vectors: Tensor  # (E, 3) float | r_j + k @ L - r_i (differentiable)
    edge_lengths: Tensor  # (E,) float | |edge_vectors|


def edge_vectors(
    lattice: Tensor, frac_coords: Tensor, edge_index: Tensor, cell_offsets: Tensor, batch: Tensor
) -> tuple[Tensor, Tensor]:
    """Differentiable edge vectors ``(x_j + k - x_i) @ L_b`` (E, 3) and their lengths (E,).

    ``lattice (B, 3, 3)``, ``frac_coords (N, 3)``, ``edge_index (2, E)``, ``cell_offsets (E, 3)``,
    ``batch (N,)``. Lengths have an undefined gradient for zero-length edges (coincident atoms).
    """
    src, dst = edge_index[0], edge_index[1]
    delta = frac_coords.index_select(0, dst) - frac_coords.index_select(0, src)
    delta = delta + cell_offsets.to(frac_coords.dtype)
    lat = lattice.index_select(0, batch.index_select(0, src))  # (E, 3, 3)
    vectors = torch.bmm(delta.unsqueeze(1), lat).squeeze(1)
    return vectors, torch.linalg.vector_norm(vectors, dim=-1)


class NeighborList(NamedTuple):
    """The edges of a periodic radius graph with their lengths (pymatgen's neighbour list)."""

    edge_index: Tensor  # (2, E) int64 | [source i, target j], global atom indices
    cell_offsets: Tensor  # (E, 3) int64 | image k of the target atom
    edge_lengths: Tensor  # (E,) float64 | |r_j + k @ L - r_i|, no gradient


def radius_graph(
    lattice: Tensor,
    frac_coords: Tensor,
    cutoff: float | Tensor,
    num_atoms: Tensor | None = None,
    batch: Tensor | None = None,
) -> PeriodicGraph:
    """All periodic edges shorter than ``cutoff`` (Angstrom) in a batch of crystals.

    Args:
        lattice: ``(B, 3, 3)`` rows a, b, c; or ``(3, 3)`` for one crystal without batch info.
        frac_coords: ``(N, 3)`` fractional coordinates, any real values: offsets are with respect
            to the coordinates as given (as pymatgen's ``get_neighbor_list`` reports them).
        cutoff: strict upper bound on edge lengths; a float or a ``(B,)`` tensor per crystal.
        num_atoms: ``(B,)`` atoms per crystal, or
        batch: ``(N,)`` sorted crystal index of each atom.

    Returns a PeriodicGraph; vectors and lengths have the dtype of ``frac_coords`` and carry
    gradients when the inputs do. Edge order is deterministic but not sorted: pairs i < j, then
    their reverses (j, i, -k), then the self-images (``periodic._expand``; ``sort_edges`` sorts).
    Memory grows with the number of edges only.
    """
    layout = batch_layout(lattice, frac_coords, num_atoms, batch)
    tracked = torch.is_grad_enabled() and (lattice.requires_grad or frac_coords.requires_grad)
    edges = find_edges(layout, frac_coords, cutoff, with_vectors=not tracked)
    if tracked:
        vectors, lengths = _tracked_vectors(layout, frac_coords, edges)
    else:
        vectors, lengths = edges.edge_vectors, edges.edge_lengths
        vectors, lengths = vectors.to(frac_coords.dtype), lengths.to(frac_coords.dtype)
    return PeriodicGraph(edges.edge_index, edges.cell_offsets, vectors, lengths)


def neighbor_list(
    lattice: Tensor,
    frac_coords: Tensor,
    cutoff: float | Tensor,
    num_atoms: Tensor | None = None,
    batch: Tensor | None = None,
) -> NeighborList:
    """The radius graph's edges, image offsets and float64 lengths, without edge vectors.

    Same arguments, edges and order as :func:`radius_graph`, and the same information as
    pymatgen's ``Structure.get_neighbor_list``; cheaper when vectors are not needed (no
    gradients).
    """
    layout = batch_layout(lattice, frac_coords, num_atoms, batch)
    edges = find_edges(layout, frac_coords, cutoff, with_vectors=False)
    return NeighborList(edges.edge_index, edges.cell_offsets, edges.edge_lengths)


def find_edges(
    layout: BatchLayout, frac_coords: Tensor, cutoff: float | Tensor, with_vectors: bool = True
) -> Edges:
    """The radius graph's edges with float64 lengths (and vectors if asked), no gradients."""
    radii = cutoff_per_crystal(cutoff, layout.lattice.shape[0]).to(frac_coords.device)
    heights = crystal_heights(layout.lattice)
    pair_lines = search_pairs(layout, frac_coords, radii, heights)
    point_lines = search_lattice_points(layout.lattice, radii, heights)
    return expand(layout, pair_lines, point_lines, with_vectors)


def cutoff_per_crystal(cutoff: float | Tensor, n_crystals: int) -> Tensor:
    """Cutoffs as a float64 ``(B,)`` tensor; ValueError unless all are positive and finite."""
    radii = torch.as_tensor(cutoff, dtype=torch.float64).detach().cpu().expand(n_crystals)
    if not bool(torch.isfinite(radii).all() & (radii > 0).all()):
        raise ValueError(f"the cutoff must be positive and finite, got {cutoff}")
    return radii


def _tracked_vectors(layout: BatchLayout, frac: Tensor, edges: Edges) -> tuple[Tensor, Tensor]:
    """Vectors with autograd from the indices and offsets; a reverse edge has the opposite
    vector of its edge.
    """
    forward, own = slice(0, edges.num_forward), slice(2 * edges.num_forward, None)
    (vec_f, len_f), (vec_s, len_s) = (
        edge_vectors(
            layout.lattice, frac, edges.edge_index[:, s], edges.cell_offsets[s], layout.batch
        )
        for s in (forward, own)
    )
    return torch.cat([vec_f, -vec_f, vec_s]), torch.cat([len_f, len_f, len_s])
