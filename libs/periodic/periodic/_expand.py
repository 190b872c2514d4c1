"""Expansion of the searched lines into the edges of the whole radius graph.

Output order: ``[0, F)`` the pairs i < j, grouped by the crystals' line axis and sorted by
(i, j, k) within a group; ``[F, 2F)`` their reverses (j, i, -k) in the same order; ``[2F, E)``
the self-images (i, i, k), atom by atom. Edges are written straight into the output arrays.
"""

from typing import NamedTuple

import torch
from torch import Tensor

from periodic._batching import BatchLayout, segment_arange, segment_ids
from periodic._search import Lines


class Edges(NamedTuple):
    """Edges of a radius graph (order in the module docstring), with float64 vectors."""

    edge_index: Tensor  # (2, E) int64 | [source i, target j]
    cell_offsets: Tensor  # (E, 3) int64 | image k of the target
    edge_vectors: Tensor  # (E, 3) float64 | r_j + k @ L - r_i
    edge_lengths: Tensor  # (E,) float64 | |edge_vectors|
    num_forward: int  # F


@torch.no_grad()
def expand(layout: BatchLayout, pair_lines: list[Lines], point_lines: list[Lines]) -> Edges:
    """All edges from the lines of the pairs i < j and the lines through the lattice points."""
    totals = [int(chunk.count.sum()) for chunk in pair_lines]
    forward = sum(totals)
    point_crystal, point_offsets, point_vectors = _lattice_points(point_lines)
    atom, point = _self_images(layout, point_crystal)
    total = 2 * forward + atom.shape[0]
    device = layout.batch.device
    index = torch.empty(2, total, dtype=torch.long, device=device)
    offsets = torch.empty(total, 3, dtype=torch.long, device=device)
    vectors = torch.empty(total, 3, dtype=torch.float64, device=device)
    lengths = torch.empty(total, dtype=torch.float64, device=device)
    at = 0
    for chunk, size in zip(pair_lines, totals, strict=True):
        span, scratch = slice(at, at + size), slice(forward + at, forward + at + size)
        _expand_lines(chunk, index[:, span], offsets[span], vectors[span], vectors[scratch])
        at += size
    reverse, own = slice(forward, 2 * forward), slice(2 * forward, total)
    index[0, reverse], index[1, reverse] = index[1, :forward], index[0, :forward]
    torch.neg(offsets[:forward], out=offsets[reverse])
    torch.neg(vectors[:forward], out=vectors[reverse])
    index[0, own], index[1, own] = atom, atom
    torch.index_select(point_offsets, 0, point, out=offsets[own])
    torch.index_select(point_vectors, 0, point, out=vectors[own])
    for part in (slice(0, forward), own):
        torch.linalg.vector_norm(vectors[part], dim=-1, out=lengths[part])
    lengths[reverse] = lengths[:forward]
    return Edges(index, offsets, vectors, lengths, forward)


def _expand_lines(
    lines: Lines, index: Tensor, offsets: Tensor, vectors: Tensor, scratch: Tensor
) -> None:
    """Write the images of ``lines`` into ``index (2, E)``, ``offsets (E, 3)``, ``vectors (E, 3)``.

    Contract: fills the given views in place (E = ``lines.count.sum()``) and overwrites
    ``scratch (E, 3)``; large temporaries are avoided because each one costs page faults.
    """
    column, _ = segment_ids(lines.count)
    torch.index_select(lines.source, 0, column, out=index[0])
    torch.index_select(lines.target, 0, column, out=index[1])
    torch.index_select(lines.start, 0, column, out=offsets)
    number = torch.arange(column.shape[0], device=column.device)
    inner = lines.inner.index_select(0, column).add_(number, alpha=3)  # flat (e, inner axis)
    flat = offsets.view(-1)
    flat.index_add_(0, inner, number)  # k_inner = start + edge number
    torch.index_select(lines.base, 0, column, out=vectors)
    torch.index_select(lines.axis, 0, column, out=scratch)
    steps = flat.index_select(0, inner).to(vectors.dtype).unsqueeze(-1).expand(-1, 3)
    scratch.view(-1).mul_(steps.reshape(-1))  # flat: broadcasting over a trailing 3 is slower
    vectors += scratch


def _lattice_points(lines: list[Lines]) -> tuple[Tensor, Tensor, Tensor]:
    """Crystal (M,), offset k (M, 3) and vector (M, 3) of each lattice point 0 < |k @ L| < r."""
    parts = []
    for chunk in lines:
        size = int(chunk.count.sum())
        index = torch.empty(2, size, dtype=torch.long, device=chunk.count.device)
        offsets = torch.empty(size, 3, dtype=torch.long, device=chunk.count.device)
        vectors = torch.empty(size, 3, dtype=torch.float64, device=chunk.count.device)
        _expand_lines(chunk, index, offsets, vectors, torch.empty_like(vectors))
        nonzero = torch.nonzero(offsets.any(-1)).squeeze(-1)
        parts.append((index[0], offsets, vectors))
        parts[-1] = tuple(x.index_select(0, nonzero) for x in parts[-1])
    if not parts:
        empty = torch.zeros(0, 3, dtype=torch.long)
        return empty[:, 0], empty, empty.double()
    crystals, offsets, vectors = zip(*parts, strict=True)
    return torch.cat(crystals), torch.cat(offsets), torch.cat(vectors)


def _self_images(layout: BatchLayout, point_crystal: Tensor) -> tuple[Tensor, Tensor]:
    """The self-image edges (i, i, k): atom (S,) and lattice point row (S,) of each."""
    points = torch.bincount(point_crystal, minlength=layout.num_atoms.shape[0])
    first_point = torch.cumsum(points, 0) - points
    crystal, position = segment_arange(layout.num_atoms * points)
    per_atom = points.index_select(0, crystal)
    first_atom = layout.starts.index_select(0, crystal)
    atom = first_atom + torch.div(position, per_atom, rounding_mode="floor")
    return atom, first_point.index_select(0, crystal) + position % per_atom
