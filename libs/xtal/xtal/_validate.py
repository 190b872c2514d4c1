"""Validation of a crystal's arrays against `ValidationLimits`; errors name the problem."""

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pymatgen.core import Lattice
from pymatgen.optimization.neighbors import find_points_in_spheres

from xtal._elements import MAX_ATOMIC_NUMBER
from xtal._errors import CrystalError


@dataclass(frozen=True)
class ValidationLimits:
    """Limits a valid crystal respects.

    Defaults follow the CDVAE/DiffCSP structural-validity rule (distance >= 0.5 A, volume >=
    0.1 A^3) and accept every crystal of the Perov-5, MP-20 and Carbon-24 benchmark files.

    - max_atoms: most atoms per cell (checked before expensive work where the input allows).
    - min_distance: smallest allowed periodic distance in Angstrom between two atoms, including an
      atom and its own periodic images; 0 disables the check.
    - min_volume: smallest allowed cell volume in A^3. A per-atom bound follows from min_distance:
      atoms at least d apart need at least d^3 / sqrt(2) A^3 each (the densest sphere packing),
      so a cell below that is rejected without a neighbour search.
    - max_length: longest allowed lattice vector in Angstrom (the benchmark cells are under 50 A).
    - max_volume_per_atom: largest allowed cell volume per atom in A^3 (the benchmark crystals
      have at most ~200). With max_atoms it bounds the volume: at most max_atoms * this.
    - max_frac_coord: largest allowed |fractional coordinate|. A larger one is refused, never
      wrapped: float64 keeps ~1e-13 of a coordinate of 1000, but 1e308 wraps to an arbitrary 0.

    The three upper bounds are checked before any neighbour search, so the work and memory of
    validating (or scoring) a cell never grow with a huge cell or coordinate.
    """

    max_atoms: int = 1000
    min_distance: float = 0.5
    min_volume: float = 0.1
    max_length: float = 1000.0
    max_volume_per_atom: float = 1000.0
    max_frac_coord: float = 1000.0

    def __post_init__(self) -> None:
        if self.max_atoms < 1:
            raise ValueError(f"max_atoms must be at least 1, got {self.max_atoms}")
        for name in ("min_distance", "min_volume"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")
        for name in ("max_length", "max_volume_per_atom", "max_frac_coord"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {value}")

    @property
    def min_volume_per_atom(self) -> float:
        """Volume per atom (A^3) below which two atoms must be closer than min_distance."""
        return self.min_distance**3 / math.sqrt(2.0)


def check_crystal_arrays(
    lattice: np.ndarray,  # (3, 3) rows a, b, c in Angstrom
    frac_coords: np.ndarray,  # (n, 3)
    atomic_numbers: np.ndarray,  # (n,)
    limits: ValidationLimits,
    labels: Sequence[str] | None = None,  # (n,) CIF site labels of a symmetry-expanded cell
) -> None:
    """Raise CrystalError naming the first problem found, in this order: non-finite numbers,
    out-of-range lengths and coordinates, unknown elements, atom count, volume (too small, or
    too large per atom), overlapping atoms. With `labels`, two overlapping atoms from the same
    CIF site are reported as "symmetry_overlap"."""
    _check_finite(lattice, frac_coords)
    _check_range(lattice, frac_coords, limits)
    _check_elements(atomic_numbers)
    _check_count(len(atomic_numbers), limits.max_atoms)
    _check_volume(lattice, len(atomic_numbers), limits)
    if limits.min_distance > 0:
        overlap = find_overlap(lattice, frac_coords, limits.min_distance)
        if overlap is not None:
            _raise_overlap(overlap, limits.min_distance, labels)


def _raise_overlap(
    overlap: tuple[int, int, float], min_distance: float, labels: Sequence[str] | None
) -> None:
    i, j, distance = overlap
    apart = f"{distance:.4g} A apart (minimum {min_distance} A)"
    if labels is not None and i != j and labels[i] == labels[j]:
        raise CrystalError(
            "symmetry_overlap",
            f"the symmetry operations put two images of atom site {labels[i]!r} {apart}",
        )
    who = f"atom {i} and its own periodic image" if i == j else f"atoms {i} and {j}"
    raise CrystalError("overlapping_atoms", f"{who} are {apart}")


def _check_finite(lattice: np.ndarray, frac_coords: np.ndarray) -> None:
    if not np.isfinite(lattice).all():
        raise CrystalError("non_finite", "the lattice contains NaN or infinite values")
    bad = np.flatnonzero(~np.isfinite(frac_coords).all(axis=1))
    if bad.size:
        raise CrystalError(
            "non_finite",
            f"fractional coordinates of atom {bad[0]} are not finite: {frac_coords[bad[0]]}",
        )


def _check_range(lattice: np.ndarray, frac_coords: np.ndarray, limits: ValidationLimits) -> None:
    """Lengths and coordinates within the limits (finite numbers; no overflow on the way)."""
    with np.errstate(over="ignore"):
        longest = float(np.hypot.reduce(lattice, axis=1).max())  # hypot: no overflow below 1e308
    if longest > limits.max_length:
        raise CrystalError(
            "out_of_range",
            f"cell out of range: a lattice vector is {longest:.4g} A long, beyond the limit of"
            f" {limits.max_length:g} A",
        )
    far = np.flatnonzero(np.abs(frac_coords).max(axis=1, initial=0.0) > limits.max_frac_coord)
    if far.size:
        raise CrystalError(
            "out_of_range",
            f"coordinate out of range: atom {far[0]} is at fractional {frac_coords[far[0]]}"
            f" (|x| must be at most {limits.max_frac_coord:g}; never wrapped)",
        )


def _check_elements(atomic_numbers: np.ndarray) -> None:
    bad = np.flatnonzero((atomic_numbers < 1) | (atomic_numbers > MAX_ATOMIC_NUMBER))
    if bad.size:
        raise CrystalError(
            "unknown_element",
            f"atomic number {atomic_numbers[bad[0]]} of atom {bad[0]} is not in"
            f" 1..{MAX_ATOMIC_NUMBER}",
        )


def _check_count(num_atoms: int, max_atoms: int) -> None:
    if num_atoms == 0:
        raise CrystalError("no_atoms", "the cell has no atoms")
    if num_atoms > max_atoms:
        raise CrystalError("too_many_atoms", f"{num_atoms} atoms exceed the limit of {max_atoms}")


def _check_volume(lattice: np.ndarray, num_atoms: int, limits: ValidationLimits) -> None:
    volume = abs(float(np.linalg.det(lattice)))
    if volume < limits.min_volume or volume == 0.0:
        raise CrystalError(
            "small_volume",
            f"cell volume {volume:.4g} A^3 is below the minimum {limits.min_volume} A^3",
        )
    if volume / num_atoms > limits.max_volume_per_atom:
        raise CrystalError(
            "out_of_range",
            f"cell out of range: volume per atom {volume / num_atoms:.4g} A^3 is beyond the"
            f" limit of {limits.max_volume_per_atom:g} A^3",
        )
    if volume / num_atoms < limits.min_volume_per_atom:
        raise CrystalError(
            "small_volume",
            f"volume per atom {volume / num_atoms:.4g} A^3 is below"
            f" {limits.min_volume_per_atom:.4g} A^3, the densest packing of atoms"
            f" {limits.min_distance} A apart",
        )


def find_overlap(
    lattice: np.ndarray,  # (3, 3) non-singular
    frac_coords: np.ndarray,  # (n, 3)
    cutoff: float,
) -> tuple[int, int, float] | None:
    """The closest pair (i, j, distance) with periodic distance below `cutoff`, or None.

    Distances are minimised over all periodic images, so an atom closer than `cutoff` to its own
    image (i == j: a cell shorter than `cutoff` along some lattice vector) counts, and so do two
    atoms at exactly the same place. The search runs on the LLL-reduced basis with a radius of at
    most its shortest vector (itself a self-image distance), which bounds the image search for
    skewed and tiny cells; pymatgen's cell-list neighbour search does the rest.
    """
    reduced = Lattice(lattice).lll_matrix  # (3, 3), same lattice, near-orthogonal basis
    shortest = float(np.linalg.norm(reduced, axis=1).min())
    radius = min(float(cutoff), shortest)
    cart = np.ascontiguousarray(frac_coords @ lattice, dtype=np.float64)  # (n, 3)
    centers, neighbors, images, distances = find_points_in_spheres(
        cart, cart, r=radius, pbc=np.ones(3, dtype=np.int64), lattice=reduced, tol=1e-8
    )
    keep = ((centers != neighbors) | np.any(images != 0, axis=1)) & (distances < radius)
    if keep.any():
        best = np.flatnonzero(keep)[np.argmin(distances[keep])]
        i, j = sorted((int(centers[best]), int(neighbors[best])))
        return i, j, float(distances[best])
    return (0, 0, shortest) if shortest < cutoff else None
