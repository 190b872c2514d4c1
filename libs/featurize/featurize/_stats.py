"""Dataset statistics: atoms per cell, volume per atom, element and composition counts."""

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from xtal import Crystal


@dataclass(frozen=True)
class DatasetStats:
    """Statistics of a featurised split (JSON-serialisable via ``to_dict``).

    atoms_per_cell: histogram {n: number of crystals with n atoms};
    volume_per_atom_mean / _std: over crystals, of V / n in A^3 (population std);
    element_atom_counts: {Z: atoms of element Z}; element_crystal_counts: {Z: crystals with Z};
    elements_per_crystal: histogram {number of distinct elements: crystals}.
    """

    num_crystals: int
    num_atoms: int
    atoms_per_cell: dict[int, int]
    volume_per_atom_mean: float
    volume_per_atom_std: float
    element_atom_counts: dict[int, int]
    element_crystal_counts: dict[int, int]
    elements_per_crystal: dict[int, int]

    def element_frequencies(self) -> dict[int, float]:
        """Fraction of all atoms that are element Z."""
        return {z: count / self.num_atoms for z, count in self.element_atom_counts.items()}

    def to_dict(self) -> dict[str, Any]:
        """Plain dict with string keys (for JSON)."""
        return {
            key: {str(k): v for k, v in value.items()} if isinstance(value, dict) else value
            for key, value in asdict(self).items()
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DatasetStats":
        """Inverse of ``to_dict``."""
        return cls(
            **{
                key: {int(k): v for k, v in value.items()} if isinstance(value, dict) else value
                for key, value in data.items()
            }
        )


def compute_stats(crystals: Sequence[Crystal]) -> DatasetStats:
    """Statistics of ``crystals`` (at least one)."""
    if not crystals:
        raise ValueError("cannot compute statistics of an empty dataset")
    sizes = np.array([c.num_atoms for c in crystals])
    per_atom = np.array([c.volume for c in crystals]) / sizes
    atom_counts: Counter[int] = Counter()
    crystal_counts: Counter[int] = Counter()
    for crystal in crystals:
        atom_counts.update(crystal.atomic_numbers.tolist())
        crystal_counts.update(set(crystal.atomic_numbers.tolist()))
    distinct = Counter(len(set(c.atomic_numbers.tolist())) for c in crystals)
    return DatasetStats(
        num_crystals=len(crystals),
        num_atoms=int(sizes.sum()),
        atoms_per_cell=_sorted_counts(Counter(sizes.tolist())),
        volume_per_atom_mean=float(per_atom.mean()),
        volume_per_atom_std=float(per_atom.std()),
        element_atom_counts=_sorted_counts(atom_counts),
        element_crystal_counts=_sorted_counts(crystal_counts),
        elements_per_crystal=_sorted_counts(distinct),
    )


def _sorted_counts(counts: Counter[int]) -> dict[int, int]:
    return {int(k): int(counts[k]) for k in sorted(counts)}
