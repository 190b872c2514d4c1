"""Batch layout of crystals of different sizes: atoms of crystal b are contiguous and sorted."""

from typing import NamedTuple

import torch
from torch import Tensor


class BatchLayout(NamedTuple):
    """Where each crystal's atoms lie in the concatenated atom arrays."""

    lattice: Tensor  # (B, 3, 3) | lattices
    num_atoms: Tensor  # (B,) int64 | atoms per crystal
    batch: Tensor  # (N,) int64 | crystal of each atom, non-decreasing
    starts: Tensor  # (B,) int64 | index of the first atom of each crystal


def batch_layout(
    lattice: Tensor,
    frac_coords: Tensor,
    num_atoms: Tensor | None = None,
    batch: Tensor | None = None,
) -> BatchLayout:
    """Check and complete the layout from ``num_atoms (B,)`` or a sorted ``batch (N,)`` index.

    A single crystal may be given as ``lattice (3, 3)`` with neither ``num_atoms`` nor ``batch``.
    Raises ValueError naming the inconsistency.
    """
    if frac_coords.dim() != 2 or frac_coords.shape[-1] != 3:
        raise ValueError(f"frac_coords must have shape (N, 3), got {tuple(frac_coords.shape)}")
    n_total = frac_coords.shape[0]
    device = frac_coords.device
    if lattice.dim() == 2 and num_atoms is None and batch is None:
        lattice = lattice.unsqueeze(0)
        num_atoms = torch.tensor([n_total], device=device)
    if lattice.dim() != 3 or lattice.shape[1:] != (3, 3):
        raise ValueError(f"lattice must have shape (B, 3, 3), got {tuple(lattice.shape)}")
    n_crystals = lattice.shape[0]
    if num_atoms is None:
        if batch is None:
            raise ValueError("give num_atoms (B,) or batch (N,) for a batch of lattices")
        num_atoms = _num_atoms_from_batch(batch, n_crystals, n_total)
    num_atoms = num_atoms.to(device=device, dtype=torch.long)
    if num_atoms.shape != (n_crystals,) or int(num_atoms.sum()) != n_total:
        raise ValueError(
            f"num_atoms must have shape ({n_crystals},) and sum to {n_total} atoms, "
            f"got shape {tuple(num_atoms.shape)} and sum {int(num_atoms.sum())}"
        )
    if batch is None:
        batch = torch.repeat_interleave(torch.arange(n_crystals, device=device), num_atoms)
    starts = torch.cumsum(num_atoms, 0) - num_atoms
    return BatchLayout(lattice, num_atoms, batch.to(torch.long), starts)


def _num_atoms_from_batch(batch: Tensor, n_crystals: int, n_total: int) -> Tensor:
    if batch.shape != (n_total,):
        raise ValueError(f"batch must have shape ({n_total},), got {tuple(batch.shape)}")
    if n_total and (int(batch.min()) < 0 or int(batch.max()) >= n_crystals):
        raise ValueError(f"batch values must lie in [0, {n_crystals}) for {n_crystals} lattices")
    if n_total > 1 and bool((batch[1:] < batch[:-1]).any()):
        raise ValueError("batch must be sorted: the atoms of each crystal must be contiguous")
    return torch.bincount(batch, minlength=n_crystals)


def segment_ids(counts: Tensor) -> tuple[Tensor, Tensor]:
    """Segment of each element ``(total,)`` and first element of each segment ``(M,)``.

    Equal to ``repeat_interleave(arange(M), counts)`` (which is several times slower on CPU): a 1
    is added at the start of every segment and the marks are summed cumulatively, so empty
    segments are skipped. E.g. counts [2, 0, 3] give segments [0, 0, 2, 2, 2], firsts [0, 2, 2].
    """
    first = torch.cumsum(counts, 0) - counts
    total = int(first[-1] + counts[-1]) if counts.numel() else 0
    marks = torch.zeros(total + 1, dtype=counts.dtype, device=counts.device)
    marks.index_add_(0, first, torch.ones_like(counts))
    return torch.cumsum(marks[:total], 0) - 1, first


def segment_arange(counts: Tensor) -> tuple[Tensor, Tensor]:
    """For ``counts (M,)``: the segment of each element and its position in the segment.

    Both outputs have shape ``(counts.sum(),)``; e.g. counts [2, 0, 3] give segments
    [0, 0, 2, 2, 2] and positions [0, 1, 0, 1, 2].
    """
    segment, first = segment_ids(counts)
    position = torch.arange(segment.shape[0], device=counts.device) - first.index_select(0, segment)
    return segment, position


def select_crystals(
    layout: BatchLayout, frac_coords: Tensor, keep: Tensor
) -> tuple[BatchLayout, Tensor, Tensor]:
    """The crystals where ``keep (B,)`` is true: their layout, ``frac_coords (N', 3)`` and the
    global index ``(N',)`` of each of their atoms.
    """
    atom_mask = keep.index_select(0, layout.batch)
    atom_ids = torch.nonzero(atom_mask).squeeze(-1)
    num_atoms = layout.num_atoms[keep]
    sub = batch_layout(layout.lattice[keep], frac_coords[atom_ids], num_atoms=num_atoms)
    return sub, frac_coords[atom_ids], atom_ids
