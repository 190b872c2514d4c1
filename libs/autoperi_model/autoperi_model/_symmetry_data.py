"""Crystals with their space-group operations, as tensors: idealisation, collation, gathering.

`SymmetricCrystals` holds a dataset in the form the symmetric flows train on: every crystal
replaced by spglib's idealised primitive cell (exactly symmetric, Niggli-reduced; see
`xtal.idealize`) with its `xtal.SiteSymmetry`, packed as flat arrays so that batches gather fast.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import logging
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from periodic import SymmetryTable
from torch import Tensor
from xtal import SiteSymmetry, SymmetryError, idealize, site_symmetry

from autoperi_model._batch import CrystalBatch, CrystalTable

log = logging.getLogger(__name__)

SYMMETRY_FORMAT = "v1"  # bump when SymmetricCrystals' fields change
ANALYSIS_SYMPREC = 0.01  # Angstrom: the tolerance at which a crystal's space group is read
EXACT_SYMPREC = 1e-4  # operations of an idealised cell are exact to far better than this


def analyze(lattice: np.ndarray, frac: np.ndarray, numbers: np.ndarray, symprec: float):
    """(lattice, frac, numbers, SiteSymmetry) of the idealised primitive cell of a crystal
    (lattice rows (3, 3), frac (n, 3), numbers (n,)); SymmetryError when spglib fails."""
    lat, pos, z = idealize(lattice, frac, numbers, symprec)
    return lat, pos, z, site_symmetry(lat, pos, z, symprec=EXACT_SYMPREC)


def symmetry_table(symmetries: Sequence[SiteSymmetry], dtype=torch.float64) -> SymmetryTable:
    """Collate per-crystal symmetries (atoms in crystal order) into one batch table."""
    sizes = [len(s.representative) for s in symmetries]
    starts = np.cumsum([0, *sizes[:-1]])
    groups = [s.point_group for s in symmetries]
    cat = np.concatenate
    return SymmetryTable(
        representative=torch.as_tensor(
            cat([s.representative + o for s, o in zip(symmetries, starts, strict=True)])
        ),
        rotation=torch.as_tensor(cat([s.rotation for s in symmetries]), dtype=dtype),
        translation=torch.as_tensor(cat([s.translation for s in symmetries]), dtype=dtype),
        free_basis=torch.as_tensor(cat([s.free_basis for s in symmetries]), dtype=dtype),
        point_group=torch.as_tensor(cat(groups), dtype=dtype),
        point_group_of=torch.repeat_interleave(
            torch.arange(len(groups)), torch.tensor([len(g) for g in groups])
        ),
    )


def symmetric_batch(
    crystals: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray, SiteSymmetry]],
    dtype: torch.dtype = torch.float32,
) -> CrystalBatch:
    """A batch of (lattice, frac, numbers, symmetry) crystals carrying their operations."""
    batch = CrystalBatch.from_arrays(
        [c[0] for c in crystals], [c[1] for c in crystals], [c[2] for c in crystals], dtype
    )
    return batch.replace(symmetry=symmetry_table([c[3] for c in crystals], dtype))


@dataclass(frozen=True)
class SymmetricCrystals:
    """C idealised crystals with their operations as flat float64 tensors.

    lattice (C, 3, 3); frac_coords, atomic_numbers (A,); offsets, num_atoms (C,); per atom the
    representative's index within its crystal (A,), rotation (A, 3, 3), translation (A, 3),
    free_basis (A, 3, 3), Wyckoff letter (A,) as 0 = a, 1 = b, ...; point_group (K, 3, 3) with
    group_offsets, group_sizes (C,); space_group (C,) numbers.
    """

    lattice: Tensor
    frac_coords: Tensor
    atomic_numbers: Tensor
    num_atoms: Tensor
    offsets: Tensor
    representative: Tensor
    rotation: Tensor
    translation: Tensor
    free_basis: Tensor
    wyckoff: Tensor
    point_group: Tensor
    group_offsets: Tensor
    group_sizes: Tensor
    space_group: Tensor

    def __len__(self) -> int:
        return int(self.num_atoms.shape[0])

    @staticmethod
    def from_analyses(
        analyses: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray, SiteSymmetry]],
    ) -> SymmetricCrystals:
        """Pack `analyze` results (in order)."""
        batch = symmetric_batch(analyses, torch.float64)
        sym = batch.symmetry
        sizes = torch.bincount(sym.point_group_of, minlength=len(analyses))
        starts = torch.cumsum(batch.num_atoms, 0) - batch.num_atoms
        return SymmetricCrystals(
            lattice=batch.lattice,
            frac_coords=batch.frac_coords,
            atomic_numbers=batch.atomic_numbers,
            num_atoms=batch.num_atoms,
            offsets=starts,
            representative=sym.representative - starts.index_select(0, batch.batch),
            rotation=sym.rotation,
            translation=sym.translation,
            free_basis=sym.free_basis,
            wyckoff=torch.tensor(
                [ord(w) - ord("a") for a in analyses for w in a[3].wyckoffs], dtype=torch.long
            ),
            point_group=sym.point_group,
            group_offsets=torch.cumsum(sizes, 0) - sizes,
            group_sizes=sizes,
            space_group=torch.tensor([a[3].number for a in analyses], dtype=torch.long),
        )

    def state(self) -> dict[str, Tensor]:
        """The tensors by field name (for `torch.save`; `SymmetricCrystals(**state)` restores)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def atoms_of(self, index: int) -> slice:
        """The atom rows of crystal `index`."""
        start = int(self.offsets[index])
        return slice(start, start + int(self.num_atoms[index]))

    def numbers_of(self, index: int) -> np.ndarray:
        """Atomic numbers (n,) of crystal `index`."""
        return self.atomic_numbers[self.atoms_of(index)].numpy()

    def site_signatures(self, index: int) -> dict[str, int]:
        """Each element's Wyckoff signature in crystal `index` (its orbits as multiplicity and
        letter, sorted, e.g. "1a" or "2c|4e") -> the element."""
        atoms = self.atoms_of(index)
        reps = self.representative[atoms].tolist()
        letters, numbers = self.wyckoff[atoms].tolist(), self.atomic_numbers[atoms].tolist()
        size = collections.Counter(reps)
        orbits = collections.defaultdict(list)
        for r in size:
            orbits[numbers[r]].append(f"{size[r]}{chr(ord('a') + letters[r])}")
        return {"|".join(sorted(v)): z for z, v in orbits.items()}

    def prototype_signature(self, index: int) -> tuple[int, tuple[str, ...]]:
        """(space group, sorted per-element Wyckoff signatures): the anonymous prototype."""
        return int(self.space_group[index]), tuple(sorted(self.site_signatures(index)))

    def volume_per_atom(self) -> float:
        """Mean over crystals of |det L| / n."""
        return float((torch.linalg.det(self.lattice).abs() / self.num_atoms).mean())

    def gather(self, index: Tensor) -> CrystalBatch:
        """The crystals `index` (C',) as a float64 batch carrying their operations."""
        n = self.num_atoms.index_select(0, index)
        batch = torch.repeat_interleave(torch.arange(len(index)), n)
        first = torch.cumsum(n, 0) - n  # first atom of each crystal in the batch
        atom = self.offsets.index_select(0, index).index_select(0, batch)
        atom = atom + torch.arange(int(n.sum())) - first.index_select(0, batch)
        sizes = self.group_sizes.index_select(0, index)
        group_of = torch.repeat_interleave(torch.arange(len(index)), sizes)
        group_first = torch.cumsum(sizes, 0) - sizes
        op = self.group_offsets.index_select(0, index).index_select(0, group_of)
        op = op + torch.arange(int(sizes.sum())) - group_first.index_select(0, group_of)
        table = SymmetryTable(
            representative=self.representative.index_select(0, atom) + first.index_select(0, batch),
            rotation=self.rotation.index_select(0, atom),
            translation=self.translation.index_select(0, atom),
            free_basis=self.free_basis.index_select(0, atom),
            point_group=self.point_group.index_select(0, op),
            point_group_of=group_of,
        )
        return CrystalBatch(
            lattice=self.lattice.index_select(0, index),
            frac_coords=self.frac_coords.index_select(0, atom),
            atomic_numbers=self.atomic_numbers.index_select(0, atom),
            batch=batch,
            num_atoms=n,
            symmetry=table,
        )


def _analyze_or_none(item: tuple[np.ndarray, np.ndarray, np.ndarray, float]):
    try:
        return analyze(*item)
    except SymmetryError:
        return None


def analyze_many(
    crystals: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
    symprec: float = ANALYSIS_SYMPREC,
    workers: int = 1,
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, SiteSymmetry] | None]:
    """`analyze` of each (lattice, frac, numbers), in order, None where spglib fails; on
    `workers` processes when more than one."""
    items = [(lat, pos, z, symprec) for lat, pos, z in crystals]
    if workers <= 1:
        return [_analyze_or_none(item) for item in items]
    with ProcessPoolExecutor(workers) as pool:
        return list(pool.map(_analyze_or_none, items, chunksize=64))


def symmetric_table(table: CrystalTable, version: str, workers: int) -> SymmetricCrystals:
    """`table` idealised with its operations (crystals spglib cannot analyse dropped), cached
    under AUTOPERI_CACHE_DIR (default ~/.cache/autoperi) by `version`, the table's size and the
    analysis tolerance."""
    tag = f"{version}|{len(table)}|{ANALYSIS_SYMPREC}|{SYMMETRY_FORMAT}"
    root = Path(os.environ.get("AUTOPERI_CACHE_DIR", Path.home() / ".cache" / "autoperi"))
    path = root / "symmetry" / f"{hashlib.sha256(tag.encode()).hexdigest()[:24]}.pt"
    if path.is_file():
        return SymmetricCrystals(**torch.load(path, weights_only=True))
    batch = table.gather(torch.arange(len(table)))
    items = [(a.lattice, a.frac_coords, a.atomic_numbers) for a in batch.arrays()]
    analyses = [a for a in analyze_many(items, workers=workers) if a is not None]
    log.info("symmetry of %s: %d of %d crystals analysed", version, len(analyses), len(items))
    crystals = SymmetricCrystals.from_analyses(analyses)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(crystals.state(), path.with_suffix(".tmp"))
    path.with_suffix(".tmp").rename(path)
    return crystals
