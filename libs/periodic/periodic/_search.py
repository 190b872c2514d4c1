"""Neighbour search of the periodic radius graph (no gradients, float64).

Symmetry halves the work: edge (i, j, k) exists iff (j, i, -k) does, so only pairs i < j are
searched, and the self-images (i, i, k != 0) are the lattice points ``0 < |k @ L| < r``, the
same for every atom of a crystal, found once per crystal.

For a pair with fractional difference ``d = x_j - x_i``, the component of ``f = d + k`` along
axis a is at most ``r / h_a`` in magnitude (``h_a`` the cell height), so ``k_a`` runs over
``[ceil(-r / h_a - d_a), floor(r / h_a - d_a)]``: image ranges follow the cell heights (never a
fixed {-1, 0, 1}) and coordinates need not be wrapped. Each (k_a, k_b) of that box is a line
along c that the sphere cuts in the open interval

    |f_c - centre| < half,   centre = -(f_a t_a + f_b t_b),   half = sqrt((r^2 - |w|^2) / |c|^2),

where ``t_x = x . c / |c|^2`` and ``w`` is the part of ``f_a a + f_b b`` normal to c, so every
k_c in it is an edge and nothing else is tested. The lines run along each crystal's axis of
smallest cell height (the longest lines: about 30 % fewer lines than a fixed axis on MP-20).
Work is vectorised over all pairs in chunks small enough to stay in cache. Decisions at
``|v| = r`` within rounding (~1e-12 A) may go either way.
"""

import itertools
from typing import NamedTuple

import torch
from torch import Tensor

from periodic._batching import BatchLayout, segment_arange
from periodic._lattice import cell_heights

_BOX_SLACK = 1e-9  # fractional widening of the (k_a, k_b) box; the line intervals are exact
# Lines per chunk: per-line float64 arrays stay under 128 KB, in cache and below glibc's mmap
# threshold (larger temporaries are mapped afresh and page-fault on every use).
_LINES_PER_CHUNK = 12_000
# Axis orders (a, b, c) that put lattice axis 0, 1 or 2 last, as the direction of the lines.
_CYCLES = ((1, 2, 0), (2, 0, 1), (0, 1, 2))


class Lines(NamedTuple):
    """The lines (k_a, k_b) of a chunk of pairs that meet the sphere, one row each."""

    source: Tensor  # (C,) int64 | atom i
    target: Tensor  # (C,) int64 | atom j
    start: Tensor  # (C, 3) int64 | image k of the line's first edge; k_inner minus its edge number
    count: Tensor  # (C,) int64 | images inside the sphere (>= 1)
    inner: Tensor  # (C,) int64 | lattice axis along which the line runs
    base: Tensor  # (C, 3) float64 | Cartesian vector of the line's image with k_inner = 0
    axis: Tensor  # (C, 3) float64 | lattice vector along the line
    closest: Tensor  # (C,) float64 | k_inner of the point nearest the origin: -base.axis/|axis|^2
    axis_sq: Tensor  # (C,) float64 | |axis|^2
    miss_sq: Tensor  # (C,) float64 | squared distance of the line from the origin


class _Frame(NamedTuple):
    """Each crystal's lattice in its search axis order (lines along the last axis)."""

    order: Tensor  # (B, 3) int64 | lattice axis of search axes a, b, c
    back: Tensor  # (B, 3) int64 | search axis of lattice axes 0, 1, 2
    rows: Tensor  # (B, 3, 3) float64 | lattice rows in search order
    heights: Tensor  # (B, 3) float64 | cell heights in search order


def crystal_heights(lattice: Tensor) -> Tensor:
    """Cell heights (B, 3) in float64; raises ValueError for degenerate or non-finite cells."""
    heights = cell_heights(lattice.detach().to(torch.float64))
    good = (torch.isfinite(heights) & (heights > 0)).all(-1)
    if not bool(good.all()):
        bad = int(torch.nonzero(~good)[0, 0])
        raise ValueError(f"crystal {bad} has a degenerate or non-finite lattice")
    return heights


@torch.no_grad()
def search_pairs(
    layout: BatchLayout, frac_coords: Tensor, radii: Tensor, heights: Tensor
) -> list[Lines]:
    """Lines of all pairs i < j of each crystal, cutoffs ``radii (B,)`` (float64); each crystal
    searches along its axis of smallest height. Crystals are taken in blocks of about
    ``_LINES_PER_CHUNK`` pairs, so that the per-pair arrays stay small too.
    """
    frame = _frame(layout.lattice, heights, torch.argmin(heights, dim=-1))
    frac = frac_coords.detach().to(torch.float64)
    frac = frac.gather(1, frame.order.index_select(0, layout.batch))  # (N, 3) in search order
    columns = [column.contiguous() for column in frac.unbind(-1)]
    later = _later_atoms(layout)
    ends = (layout.starts + layout.num_atoms).tolist()
    starts = layout.starts.tolist()
    lines = []
    for block in _chunks(layout.num_atoms * (layout.num_atoms - 1) // 2, _LINES_PER_CHUNK):
        first = starts[block.start]
        src, position = segment_arange(later[first : ends[block.stop - 1]])  # pairs i < j
        src += first
        dst = src + 1 + position
        delta = [x.index_select(0, dst) - x.index_select(0, src) for x in columns]
        lines += _search(src, dst, layout.batch.index_select(0, src), delta, frame, radii)
    return lines


@torch.no_grad()
def search_lattice_points(lattice: Tensor, radii: Tensor, heights: Tensor) -> list[Lines]:
    """Lines through the lattice points of each crystal (the origin included), ``radii (B,)``."""
    crystals = torch.arange(lattice.shape[0], device=lattice.device)
    frame = _frame(lattice, heights, torch.full_like(crystals, 2))
    origin = [torch.zeros(lattice.shape[0], dtype=torch.float64, device=lattice.device)] * 3
    return _search(crystals, crystals, crystals, origin, frame, radii)


def _frame(lattice: Tensor, heights: Tensor, inner: Tensor) -> _Frame:
    """Search frames with lines along lattice axis ``inner (B,)`` of each crystal."""
    order = torch.tensor(_CYCLES, device=lattice.device).index_select(0, inner)
    rows = lattice.detach().to(torch.float64).gather(1, order.unsqueeze(-1).expand(-1, -1, 3))
    return _Frame(order, torch.argsort(order, dim=-1), rows, heights.gather(1, order))


def _later_atoms(layout: BatchLayout) -> Tensor:
    """For each atom, the number of atoms after it in its crystal, (N,)."""
    atom = torch.arange(layout.batch.shape[0], device=layout.batch.device)
    ends = (layout.starts + layout.num_atoms).index_select(0, layout.batch)
    return ends - atom - 1


def _search(
    src: Tensor,
    dst: Tensor,
    crystal: Tensor,
    delta: list[Tensor],
    frame: _Frame,
    radii: Tensor,
) -> list[Lines]:
    """Lines of pairs with fractional differences ``delta`` (3 x (P,), search order), chunk by
    chunk.
    """
    reach = radii.unsqueeze(-1) / frame.heights  # (B, 3)
    reach_a = reach[:, 0].index_select(0, crystal)
    reach_b = reach[:, 1].index_select(0, crystal)
    low_a = torch.ceil(-reach_a - delta[0] - _BOX_SLACK)
    count_a = (torch.floor(reach_a - delta[0] + _BOX_SLACK) - low_a + 1.0).clamp_min_(0.0)
    low_b = torch.ceil(-reach_b - delta[1] - _BOX_SLACK)
    count_b = (torch.floor(reach_b - delta[1] + _BOX_SLACK) - low_b + 1.0).clamp_min_(0.0)
    fa0, fb0, dc = delta[0] + low_a, delta[1] + low_b, delta[2]
    paa, pab, pbb, t_a, t_b, inv_c2, r2 = (
        row.index_select(0, crystal) for row in _geometry(frame.rows, radii)
    )
    # The line (step_a, step_b) of the box has centre c0 - step_a t_a - step_b t_b and
    # half^2 = h0 + step_a (ha + haa step_a + hab step_b) + step_b (hb + hbb step_b).
    centre0 = -(fa0 * t_a + fb0 * t_b + dc)
    h0 = (r2 - fa0 * (paa * fa0 + pab * fb0) - pbb * fb0 * fb0) * inv_c2
    ha = -(2.0 * paa * fa0 + pab * fb0) * inv_c2
    hb = -(pab * fa0 + 2.0 * pbb * fb0) * inv_c2
    quadratic = [-paa * inv_c2, -pab * inv_c2, -pbb * inv_c2]
    per_pair = [src, dst, crystal, low_a, low_b, fa0, fb0, dc]
    per_line = [count_b, centre0, t_a, t_b, h0, ha, hb, *quadratic]
    columns = (count_a * count_b).long()
    return [
        _lines(
            columns[chunk],
            [field[chunk] for field in per_pair],
            [field[chunk] for field in per_line],
            frame,
        )
        for chunk in _chunks(columns, _LINES_PER_CHUNK)
    ]


def _geometry(rows: Tensor, radii: Tensor) -> list[Tensor]:
    """Per crystal (B,) each: paa, pab, pbb with ``|w|^2 = f_a^2 paa + f_a f_b pab + f_b^2 pbb``,
    ``t_a``, ``t_b``, ``1 / |c|^2`` and ``r^2`` (see the module docstring).
    """
    a, b, c = rows.unbind(1)
    inv_c2 = 1.0 / (c * c).sum(-1)
    t_a, t_b = (a * c).sum(-1) * inv_c2, (b * c).sum(-1) * inv_c2
    normal_a, normal_b = a - t_a.unsqueeze(-1) * c, b - t_b.unsqueeze(-1) * c
    paa, pbb = (normal_a * normal_a).sum(-1), (normal_b * normal_b).sum(-1)
    pab = 2.0 * (normal_a * normal_b).sum(-1)
    return [paa, pab, pbb, t_a, t_b, inv_c2, radii.square()]


def _chunks(sizes: Tensor, budget: int) -> list[slice]:
    """Consecutive ranges whose ``sizes`` sum to about ``budget`` at most (at least one each)."""
    if sizes.numel() == 0:
        return []
    cumulative = torch.cumsum(sizes, 0)
    n_chunks = int(cumulative[-1]) // budget + 1
    marks = torch.arange(1, n_chunks, device=sizes.device) * budget
    cuts = torch.searchsorted(cumulative, marks, right=True).tolist()
    edges = sorted({0, *[max(c, 1) for c in cuts], sizes.numel()})
    return [slice(a, b) for a, b in itertools.pairwise(edges)]


def _lines(columns: Tensor, per_pair: list[Tensor], per_line: list[Tensor], frame: _Frame) -> Lines:
    """The (k_a, k_b) lines of a chunk of pairs that meet the sphere, and their k_c intervals.

    ``per_line`` holds the (P,) terms of the line search, gathered to every line; the others are
    gathered only for the lines that meet the sphere.
    """
    col_pair, position = segment_arange(columns)  # (C,)
    src, dst, crystal, low_a, low_b, fa0, fb0, dc = per_pair
    count_b, centre0, t_a, t_b, h0, ha, hb, haa, hab, hbb = (
        field.index_select(0, col_pair) for field in per_line
    )
    position = position.to(torch.float64)
    step_a = (position + 0.5).div_(count_b).floor_()
    step_b = torch.addcmul(position, step_a, count_b, value=-1.0)
    centre = torch.addcmul(centre0, step_a, t_a, value=-1.0).addcmul_(step_b, t_b, value=-1.0)
    slope = torch.addcmul(ha, haa, step_a).addcmul_(hab, step_b)
    half = torch.addcmul(h0, step_a, slope).addcmul_(step_b, torch.addcmul(hb, hbb, step_b))
    half = half.clamp_min_(0.0).sqrt_()
    low_c = torch.sub(centre, half).floor_().add_(1.0)
    count = torch.add(centre, half).ceil_().sub_(low_c).clamp_min_(0.0)
    keep = torch.nonzero(count).squeeze(-1)
    pair = col_pair.index_select(0, keep)
    step_a, step_b, low_c, count = (x.index_select(0, keep) for x in (step_a, step_b, low_c, count))
    line_crystal = crystal.index_select(0, pair)
    searched = torch.stack(
        [
            low_a.index_select(0, pair).add_(step_a),
            low_b.index_select(0, pair).add_(step_b),
            low_c.sub_(torch.cumsum(count, 0).sub_(count)),
        ],
        dim=-1,
    ).long()
    start = searched.gather(1, frame.back.index_select(0, line_crystal))  # lattice axis order
    rows = frame.rows.index_select(0, line_crystal)  # (C, 3, 3): a, b, c
    base = fa0.index_select(0, pair).add_(step_a).unsqueeze(-1) * rows[:, 0]
    base.addcmul_(fb0.index_select(0, pair).add_(step_b).unsqueeze(-1), rows[:, 1])
    base.addcmul_(dc.index_select(0, pair).unsqueeze(-1), rows[:, 2])
    inner = frame.order[:, 2].index_select(0, line_crystal)
    source, target = src.index_select(0, pair), dst.index_select(0, pair)
    axis = rows[:, 2]
    axis_sq, along = _dot(axis, axis), _dot(base, axis)
    closest = along.div(axis_sq).neg_()
    miss_sq = _dot(base, base).addcmul_(closest, along)  # |base|^2 - (base.axis)^2 / |axis|^2
    line = (base, axis, closest, axis_sq, miss_sq)
    return Lines(source, target, start, count.long(), inner, *line)


def _dot(x: Tensor, y: Tensor) -> Tensor:
    """Row-wise dot products of (C, 3) arrays (columns: several times faster than a reduction)."""
    return torch.mul(x[:, 0], y[:, 0]).addcmul_(x[:, 1], y[:, 1]).addcmul_(x[:, 2], y[:, 2])
