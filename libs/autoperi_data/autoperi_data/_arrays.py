"""`CrystalArrays`: the one name for a crystal as three bare arrays.

It replaces the anonymous `(lattice, atomic numbers, frac)` tuples that crossed process boundaries
under other names: a NamedTuple, so it pickles small and unpacks as before, in this order.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from pymatgen.core import Lattice, Structure


class CrystalArrays(NamedTuple):
    """One crystal as arrays (no identity, properties or provenance; see `xtal.Crystal`).

    lattice         (3, 3) float64  rows a, b, c in Angstrom
    atomic_numbers  (n,)   int64
    frac_coords     (n, 3) float64  fractional coordinates (Cartesian = frac_coords @ lattice)
    """

    lattice: np.ndarray
    atomic_numbers: np.ndarray
    frac_coords: np.ndarray

    @property
    def num_atoms(self) -> int:
        return len(self.atomic_numbers)

    @classmethod
    def of(cls, crystal: Any) -> CrystalArrays:
        """The arrays of anything with `lattice`, `atomic_numbers` and `frac_coords` (e.g. an
        `xtal.Crystal`), as float64 / int64 copies."""
        return cls.build(crystal.lattice, crystal.atomic_numbers, crystal.frac_coords)

    @classmethod
    def build(cls, lattice: Any, atomic_numbers: Any, frac_coords: Any) -> CrystalArrays:
        """Arrays of the documented dtypes and shapes from array-likes (copies)."""
        numbers = np.array(atomic_numbers, dtype=np.int64).reshape(-1)
        frac = np.array(frac_coords, dtype=np.float64).reshape(len(numbers), 3)
        return cls(np.array(lattice, dtype=np.float64).reshape(3, 3), numbers, frac)

    @classmethod
    def from_pymatgen(cls, structure: Structure) -> CrystalArrays:
        """The arrays of an ordered pymatgen Structure (one species per site)."""
        numbers = [site.specie.Z for site in structure]
        return cls.build(structure.lattice.matrix, numbers, structure.frac_coords)

    def to_pymatgen(self) -> Structure:
        """A pymatgen Structure with these sites (coordinates as given, not wrapped)."""
        species = [int(z) for z in self.atomic_numbers]
        return Structure(Lattice(self.lattice), species, self.frac_coords)
