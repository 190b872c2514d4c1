"""An immutable batch of crystals as flat tensors (atoms of all crystals concatenated)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from autoperi_data import CrystalArrays
from periodic import SymmetryTable
from torch import Tensor


@dataclasses.dataclass(frozen=True)
class CrystalBatch:
    """B crystals with N atoms in total. Lattice rows are the vectors a, b, c (Angstrom).

    Frozen: `replace(**fields)` returns a copy; no function mutates a batch.
    """

    lattice: Tensor  # (B, 3, 3) rows a, b, c
    frac_coords: Tensor  # (N, 3) fractional coordinates in [0, 1)
    atomic_numbers: Tensor  # (N,) atomic numbers, int64
    batch: Tensor  # (N,) crystal index of each atom, int64
    num_atoms: Tensor  # (B,) atoms per crystal, int64
    symmetry: SymmetryTable | None = None  # space-group operations (symmetric flows only)

    @property
    def num_crystals(self) -> int:
        return int(self.num_atoms.shape[0])

    def replace(self, **fields: Tensor) -> CrystalBatch:
        """A copy with the given fields replaced."""
        return dataclasses.replace(self, **fields)

    def to(self, dtype: torch.dtype) -> CrystalBatch:
        """A copy with the float fields cast to `dtype`."""
        return self.replace(
            lattice=self.lattice.to(dtype),
            frac_coords=self.frac_coords.to(dtype),
            symmetry=None if self.symmetry is None else self.symmetry.to(dtype),
        )

    @staticmethod
    def from_arrays(
        lattices: Sequence[np.ndarray],
        fracs: Sequence[np.ndarray],
        types: Sequence[np.ndarray],
        dtype: torch.dtype = torch.float32,
    ) -> CrystalBatch:
        """Collate per-crystal arrays: lattices (3, 3), fracs (n, 3), types (n,)."""
        num_atoms = torch.tensor([len(z) for z in types], dtype=torch.long)
        return CrystalBatch(
            lattice=torch.as_tensor(np.stack(lattices), dtype=dtype),
            frac_coords=torch.as_tensor(np.concatenate(fracs), dtype=dtype),
            atomic_numbers=torch.as_tensor(np.concatenate(types), dtype=torch.long),
            batch=torch.repeat_interleave(torch.arange(len(types)), num_atoms),
            num_atoms=num_atoms,
        )

    def arrays(self) -> list[CrystalArrays]:
        """Each crystal as `CrystalArrays` (float64 / int64 numpy copies), in batch order."""
        bounds = torch.cumsum(self.num_atoms, 0).tolist()
        starts = [0, *bounds[:-1]]
        lat = self.lattice.detach().double().numpy()
        frac = self.frac_coords.detach().double().numpy()
        z = self.atomic_numbers.numpy()
        return [
            CrystalArrays(lat[b], z[s:e], frac[s:e])
            for b, (s, e) in enumerate(zip(starts, bounds, strict=True))
        ]


@dataclasses.dataclass(frozen=True)
class CrystalTable:
    """A dataset held as flat tensors with per-crystal atom ranges, for fast batch gathering."""

    lattice: Tensor  # (C, 3, 3)
    frac_coords: Tensor  # (total_atoms, 3)
    atomic_numbers: Tensor  # (total_atoms,)
    num_atoms: Tensor  # (C,)
    offsets: Tensor  # (C,) index of each crystal's first atom

    def __len__(self) -> int:
        return int(self.num_atoms.shape[0])

    @staticmethod
    def from_crystals(crystals: Sequence[Any]) -> CrystalTable:
        """A float64 table of crystals (anything with lattice, frac_coords, atomic_numbers, e.g.
        `xtal.Crystal` or `CrystalArrays`), in order."""
        batch = CrystalBatch.from_arrays(
            [c.lattice for c in crystals],
            [c.frac_coords for c in crystals],
            [c.atomic_numbers for c in crystals],
            torch.float64,
        )
        return CrystalTable.from_batch(batch)

    @staticmethod
    def concat(tables: Sequence[CrystalTable]) -> CrystalTable:
        """The crystals of `tables`, in order, as one table."""
        num_atoms = torch.cat([t.num_atoms for t in tables])
        return CrystalTable.from_batch(
            CrystalBatch(
                lattice=torch.cat([t.lattice for t in tables]),
                frac_coords=torch.cat([t.frac_coords for t in tables]),
                atomic_numbers=torch.cat([t.atomic_numbers for t in tables]),
                batch=torch.repeat_interleave(torch.arange(len(num_atoms)), num_atoms),
                num_atoms=num_atoms,
            )
        )

    @staticmethod
    def from_batch(batch: CrystalBatch) -> CrystalTable:
        offsets = torch.cumsum(batch.num_atoms, 0) - batch.num_atoms
        return CrystalTable(
            batch.lattice, batch.frac_coords, batch.atomic_numbers, batch.num_atoms, offsets
        )

    def gather(self, index: Tensor) -> CrystalBatch:
        """The crystals `index` (C',) as a batch, in that order."""
        n = self.num_atoms.index_select(0, index)
        starts = self.offsets.index_select(0, index)
        batch = torch.repeat_interleave(torch.arange(len(index)), n)
        first = torch.repeat_interleave(torch.cumsum(n, 0) - n, n)
        atom = starts.index_select(0, batch) + torch.arange(int(n.sum())) - first
        return CrystalBatch(
            lattice=self.lattice.index_select(0, index),
            frac_coords=self.frac_coords.index_select(0, atom),
            atomic_numbers=self.atomic_numbers.index_select(0, atom),
            batch=batch,
            num_atoms=n,
        )

    def volume_per_atom(self) -> float:
        """Mean over crystals of |det L| / n."""
        vol = torch.linalg.det(self.lattice.double()).abs()
        return float((vol / self.num_atoms).mean())
