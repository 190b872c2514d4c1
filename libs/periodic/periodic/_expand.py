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
    """Edges of a radius graph (order in the module docstring), with float64 lengths."""

    edge_index: Tensor  # (2, E) int64 | [source i, target j]
    cell_offsets: Tensor  # (E, 3) int64 | image k of the target
    edge_vectors: Tensor | None  # (E, 3) float64 | r_j + k @ L - r_i, when asked for
    edge_lengths: Tensor  # (E,) float64 | |r_j + k @ L - r_i|
    num_forward: int  # F


@torch.no_grad()
def expand(
    layout: BatchLayout,
    pair_lines: list[Lines],
    point_lines: list[Lines],
    with_vectors: bool = True,
) -> Edges:
    """All edges from the lines of the pairs i < j and the lines through the lattice points.

    Without ``with_vectors`` only the lengths are computed (a quarter less output memory).
    """
    totals = [int(chunk.count.sum()) for chunk in pair_lines]
    forward = sum(totals)
    point_crystal, point_offsets, point_vectors = _lattice_points(point_lines, layout.batch.device)
    atom, point = _self_images(layout, point_crystal)
    total = 2 * forward + atom.shape[0]
    device = layout.batch.device
    index = torch.empty(2, total, dtype=torch.long, device=device)
    offsets = torch.empty(total, 3, dtype=torch.long, device=device)
    lengths = torch.empty(total, dtype=torch.float64, device=device)
    vectors = torch.empty(total, 3, dtype=torch.float64, device=device) if with_vectors else None
    at = 0
    for chunk, size in zip(pair_lines, totals, strict=True):
        span = slice(at, at + size)
        if vectors is None:
            _expand_lines(chunk, index[:, span], offsets[span], lengths[span])
        else:  # the reverse half, written last, serves as scratch
            scratch = vectors[forward + at : forward + at + size]
            _expand_lines(
                chunk, index[:, span], offsets[span], lengths[span], vectors[span], scratch
            )
        at += size
    reverse, own = slice(forward, 2 * forward), slice(2 * forward, total)
    index[0, reverse], index[1, reverse] = index[1, :forward], index[0, :forward]
    torch.neg(offsets[:forward], out=offsets[reverse])
    lengths[reverse] = lengths[:forward]
    index[0, own], index[1, own] = atom, atom
    torch.index_select(point_offsets, 0, point, out=offsets[own])
    point_lengths = torch.linalg.vector_norm(point_vectors, dim=-1)
    torch.index_select(point_lengths, 0, point, out=lengths[own])
    if vectors is None:
        return Edges(index, offsets, None, lengths, forward)
    torch.neg(vectors[:forward], out=vectors[reverse])
    torch.index_select(point_vectors, 0, point, out=vectors[own])
    return Edges(index, offsets, vectors, lengths, forward)


def _expand_lines(
    lines: Lines,
    index: Tensor,
    offsets: Tensor,
    lengths: Tensor,
    vectors: Tensor | None = None,
    scratch: Tensor | None = None,
) -> None:
    """Write the images of ``lines`` into ``index (2, E)``, ``offsets (E, 3)``, ``lengths (E,)``
    and, if given, ``vectors (E, 3)`` (then ``scratch (E, 3)`` is overwritten).

    Contract: fills the given views in place (E = ``lines.count.sum()``). Lengths come from the
    line's closest approach, ``|v|^2 = |axis|^2 (k - closest)^2 + miss^2``. Large temporaries are
    avoided because each one costs page faults.
    """
    column, _ = segment_ids(lines.count)
    torch.index_select(lines.source, 0, column, out=index[0])
    torch.index_select(lines.target, 0, column, out=index[1])
    torch.index_select(lines.start, 0, column, out=offsets)
    number = torch.arange(column.shape[0], device=column.device)
    inner = lines.inner.index_select(0, column).add_(number, alpha=3)  # flat (e, inner axis)
    flat = offsets.view(-1)
    flat.index_add_(0, inner, number)  # k_inner = start + edge number
    steps = flat.index_select(0, inner).to(torch.float64)
    gap = steps - lines.closest.index_select(0, column)
    torch.mul(gap.square_(), lines.axis_sq.index_select(0, column), out=lengths)
    lengths.add_(lines.miss_sq.index_select(0, column)).clamp_min_(0.0).sqrt_()
    if vectors is None or scratch is None:
        return
    torch.index_select(lines.base, 0, column, out=vectors)
    torch.index_select(lines.axis, 0, column, out=scratch)
    scratch.view(-1).mul_(steps.unsqueeze(-1).expand(-1, 3).reshape(-1))  # flat: faster
    vectors += scratch


def _lattice_points(lines: list[Lines], device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """Crystal (M,), offset k (M, 3) and vector (M, 3) of each lattice point 0 < |k @ L| < r."""
    parts = []
    for chunk in lines:
        size = int(chunk.count.sum())
        index = torch.empty(2, size, dtype=torch.long, device=chunk.count.device)
        offsets = torch.empty(size, 3, dtype=torch.long, device=chunk.count.device)
        vectors = torch.empty(size, 3, dtype=torch.float64, device=chunk.count.device)
        lengths = torch.empty(size, dtype=torch.float64, device=chunk.count.device)
        _expand_lines(chunk, index, offsets, lengths, vectors, torch.empty_like(vectors))
        nonzero = torch.nonzero(offsets.any(-1)).squeeze(-1)
        parts.append(tuple(x.index_select(0, nonzero) for x in (index[0], offsets, vectors)))
    if not parts:
        empty = torch.zeros(0, 3, dtype=torch.long, device=device)
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
