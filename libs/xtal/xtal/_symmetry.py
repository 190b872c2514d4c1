"""Space-group symmetry of a crystal in its own cell basis: orbits, site projectors, free
parameters.

spglib finds the operations (R, t) of the crystal (fractional, column convention: x' = R x + t)
and its orbits (`equivalent_atoms`). From them this module derives what generating a symmetric
crystal needs and spglib does not give directly:

- for every atom j an operation taking its orbit's representative r to it,
  `x_j = R_j x_r + t_j` (exactly, with t_j unwrapped);
- the free parameters of each orbit: the site-symmetry projector P_r = mean of R over the
  operations fixing x_r (modulo lattice translations), and an integer basis W_r (3, rank) of the
  lattice image(P_r) ∩ Z^3, so that the representative moves as x_r = c_r + W_r a with a on the
  torus R^rank / Z^rank without leaving its Wyckoff position;
- the point group (the distinct rotations R), which fixes the lattice metric: R^T (L L^T) R =
  L L^T for lattice rows L.

Everything stays in the given cell (e.g. a Niggli-reduced primitive cell); no conventional setting
is needed.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import numpy as np
import spglib

_SMALL_VECTORS = np.array(
    [v for v in itertools.product(range(-6, 7), repeat=3) if any(v)], dtype=float
)
_SMALL_VECTORS = _SMALL_VECTORS[np.argsort(np.linalg.norm(_SMALL_VECTORS, axis=1), kind="stable")]


SITE_TOLERANCE = 0.3  # Angstrom: images of a site closer than this are the site itself


class SymmetryError(ValueError):
    """The symmetry of a crystal could not be analysed; the message says why."""


@dataclass(frozen=True)
class SiteSymmetry:
    """A crystal's space group and orbit structure: n atoms, k operations.

    number          int            space-group number (1-230)
    symbol          str            Hermann-Mauguin symbol
    wyckoffs        (n,) str       Wyckoff letter of each atom (spglib's standard setting)
    representative  (n,) int64     index of the first atom of each atom's orbit
    rotation        (n, 3, 3) int  R_j with x_j = R_j x_r + t_j (mod 1), r = representative[j]
    translation     (n, 3) float   t_j: the operation's translation plus the lattice vector that
                                   puts R_j x_r + t_j next to x_j (exact after `idealize`)
    free_basis      (n, 3, 3) float  integer basis W_r of the orbit's free parameters in its
                                   first `rank[j]` columns (zeros after)
    rank            (n,) int64     number of free parameters of the orbit (0-3)
    op_rotations    (k, 3, 3) int  the space group's operations in this cell's basis
    op_translations (k, 3) float
    """

    number: int
    symbol: str
    wyckoffs: tuple[str, ...]
    representative: np.ndarray
    rotation: np.ndarray
    translation: np.ndarray
    free_basis: np.ndarray
    rank: np.ndarray
    op_rotations: np.ndarray
    op_translations: np.ndarray

    @property
    def point_group(self) -> np.ndarray:
        """(k', 3, 3) int: the distinct rotations of the operations."""
        return np.unique(self.op_rotations, axis=0)

    def projector(self, atom: int) -> np.ndarray:
        """(3, 3) projector W W^+ onto the free directions of `atom`'s representative."""
        basis = self.free_basis[atom][:, : self.rank[atom]]
        return basis @ np.linalg.pinv(basis) if basis.size else np.zeros((3, 3))


def _wrapped(delta: np.ndarray) -> np.ndarray:
    return delta - np.round(delta)


def sublattice_basis(projector: np.ndarray) -> np.ndarray:
    """Integer basis (3, r) of image(projector) ∩ Z^3 for a rational projector of rank r (see
    `_sublattice_basis`; memoised on the projector rounded to 1e-9)."""
    key = tuple(np.round(np.asarray(projector, dtype=float), 9).ravel().tolist())
    return _cached_basis(key).copy()


@functools.lru_cache(maxsize=4096)
def _cached_basis(key: tuple[float, ...]) -> np.ndarray:
    return _sublattice_basis(np.array(key).reshape(3, 3))


def _sublattice_basis(projector: np.ndarray, tol: float = 1e-6) -> np.ndarray:
    """Integer basis (3, r) of image(projector) ∩ Z^3 for a rational projector of rank r.

    Rank 1: the shortest integer vector on the line. Rank 2: two short integer vectors of the
    plane that generate every integer vector in it (not a sublattice). Searched among integer
    vectors with entries in [-6, 6]; SymmetryError if none fits.
    """
    rank = round(float(np.trace(projector)))
    if rank == 0:
        return np.zeros((3, 0))
    if rank == 3:
        return np.eye(3)
    inside = _SMALL_VECTORS[np.abs(_SMALL_VECTORS @ projector.T - _SMALL_VECTORS).max(axis=1) < tol]
    if rank == 1 and len(inside):
        return inside[:1].T
    if rank == 2 and len(inside) >= 2:
        areas = np.linalg.norm(np.cross(inside[0], inside), axis=1)
        covolume = areas[areas > tol].min(initial=np.inf)
        for i, first in enumerate(inside):
            areas = np.linalg.norm(np.cross(first, inside[i + 1 :]), axis=1)
            for hit in np.flatnonzero(np.abs(areas - covolume) < tol):
                pair = np.stack([first, inside[i + 1 + hit]], axis=1)
                if _generates(pair, inside, tol):
                    return pair
    raise SymmetryError(f"no integer basis found for a rank-{rank} site projector")


def _generates(pair: np.ndarray, inside: np.ndarray, tol: float) -> bool:
    """True if every vector of `inside` is an integer combination of the columns of `pair`."""
    coef = np.linalg.lstsq(pair, inside.T, rcond=None)[0]
    return bool(np.abs(coef - np.round(coef)).max() < tol)


def site_symmetry(
    lattice: np.ndarray,
    frac_coords: np.ndarray,
    numbers: np.ndarray,
    symprec: float = 0.01,
    angle_tolerance: float = -1.0,
) -> SiteSymmetry:
    """The symmetry of a crystal (lattice rows (3, 3) in Angstrom, frac (n, 3), numbers (n,)).

    `symprec` (Angstrom) and `angle_tolerance` (degrees, -1: spglib's default) go to spglib.
    Raises SymmetryError when spglib finds no space group or an orbit cannot be resolved.
    """
    lattice = np.asarray(lattice, dtype=float)
    frac = np.asarray(frac_coords, dtype=float)
    cell = (lattice, frac, np.asarray(numbers))
    data = spglib.get_symmetry_dataset(cell, symprec=symprec, angle_tolerance=angle_tolerance)
    if data is None:
        raise SymmetryError(f"spglib found no space group at symprec {symprec}")
    rotations, translations = data.rotations, data.translations
    n = len(frac)
    out = {
        "representative": np.asarray(data.equivalent_atoms, dtype=np.int64),
        "rotation": np.zeros((n, 3, 3), dtype=np.int64),
        "translation": np.zeros((n, 3)),
        "free_basis": np.zeros((n, 3, 3)),
        "rank": np.zeros(n, dtype=np.int64),
    }
    for rep in np.unique(out["representative"]):
        images = frac[rep] @ rotations.transpose(0, 2, 1) + translations  # (k, 3)
        distance = np.linalg.norm(_wrapped(images - frac[rep]) @ lattice, axis=1)
        basis = sublattice_basis(rotations[distance < symprec].mean(axis=0))
        for j in np.flatnonzero(out["representative"] == rep):
            gap = np.linalg.norm(_wrapped(images - frac[j]) @ lattice, axis=1)
            op = int(np.argmin(gap))
            if gap[op] > symprec:
                raise SymmetryError(f"atom {j} is not an image of atom {rep} within {symprec} A")
            out["rotation"][j] = rotations[op]
            out["translation"][j] = translations[op] + np.round(frac[j] - images[op])
            out["free_basis"][j, :, : basis.shape[1]] = basis
            out["rank"][j] = basis.shape[1]
    return SiteSymmetry(
        number=int(data.number),
        symbol=str(data.international),
        wyckoffs=tuple(data.wyckoffs),
        op_rotations=np.asarray(rotations, dtype=np.int64),
        op_translations=np.asarray(translations, dtype=float),
        **out,
    )


def symmetric_metric(metric: np.ndarray, point_group: np.ndarray) -> np.ndarray:
    """The point-group average mean_R R^T G R of a metric G = L L^T (3, 3): invariant, SPD."""
    rot = point_group.astype(float)
    return np.einsum("kji,jl,klm->im", rot, metric, rot) / len(rot)


def idealize(
    lattice: np.ndarray, frac_coords: np.ndarray, numbers: np.ndarray, symprec: float = 0.01
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The exactly symmetric primitive cell of a crystal: (lattice (3, 3), frac (m, 3),
    numbers (m,)).

    spglib's idealised primitive cell (sites on their Wyckoff positions, the metric of the
    space group found at `symprec`), Niggli-reduced, coordinates wrapped to [0, 1). It may be a
    rotated copy of the input, and it has fewer atoms when `symprec` finds extra translations.
    Raises SymmetryError when spglib fails.
    """
    cell = (np.asarray(lattice, float), np.asarray(frac_coords, float), np.asarray(numbers))
    found = spglib.standardize_cell(cell, to_primitive=True, no_idealize=False, symprec=symprec)
    if found is None:
        raise SymmetryError(f"spglib could not idealise the crystal at symprec {symprec}")
    prim, frac, z = found
    reduced = spglib.niggli_reduce(prim)
    if reduced is None:
        raise SymmetryError("spglib could not Niggli-reduce the idealised cell")
    change = np.round(np.linalg.solve(prim.T, reduced.T).T)  # reduced = change @ prim
    frac = np.linalg.solve(change.T, frac.T).T % 1.0
    frac[np.isclose(frac, 1.0, atol=1e-12)] = 0.0
    return change @ prim, frac, np.asarray(z, dtype=np.int64)
