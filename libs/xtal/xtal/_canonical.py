"""Canonical cell (Niggli + wrap) and the content hash.

Content hash, version "xtal-content-v2": the hex SHA-256 of the lexicographically smallest key
(G'_q, sorted site keys) over all choices of
  * basis: every basis B = M R of the lattice whose vectors are as short as those of the Niggli
    cell R (M integer with entries in {-1, 0, 1}, det +-1, |row i of B| = |row i of R| within a
    relative 1e-4). This set does not depend on which Niggli cell was found: pymatgen reduces with
    a tolerance and, for a nearly symmetric lattice, may return either of two cells that differ
    by a sign or a swap; the set contains both. It includes the automorphisms (e.g. -I);
  * origin: each atom of the anchor species (the rarest element, the lighter on a tie);
where G'_q is the metric B B^T of the basis, quantised to 2^-12 A^2, and the site keys are
(Z, q_a, q_b, q_c), q = floor(2^17 * x + phi) mod 2^17 (quantum ~ 7.6e-6, phi = 0.618... the
golden ratio's fractional part), of the coordinates in that basis relative to that origin.

It is therefore invariant to: atom order; rotations and reflections of the Cartesian frame; the
choice of cell for the same lattice (any GL3(Z) change of basis); translations; periodic-image
shifts of atoms; and floating-point noise much smaller than the quanta. It is not invariant to
supercells (a 2x1x1 cell is a different record) and ignores id, properties and provenance. Noise
can still flip a number that lies within the noise of a rounding boundary. The boundaries (2^17 x
with fractional part 1 - phi = 0.381966...) are far from exact rationals with small
denominators (1/2, 1/3, 1/8, 1/12, ...: binary quanta make 2^17 x an integer or a fraction with
an odd denominator) and, unlike round-to-nearest (v1), from float32 values: a generator's float32
coordinates put 2^17 x exactly on k + 1/2 for up to 1 in 128 of them, and v1 hashes of 5 % of 400
generated MP-20 crystals changed under a pymatgen change of cell.
"""

import hashlib
import itertools

import numpy as np
from pymatgen.core import Lattice

from xtal._errors import CrystalError

HASH_VERSION = b"xtal-content-v2"
_FRAC_BITS = 17
_FRAC_OFFSET = 0.6180339887498949  # phi: boundaries at no rational with a small denominator
_METRIC_QUANTA_PER_A2 = 2.0**12
_LENGTH_RTOL = 1e-4
_CANDIDATE_CHUNK = 2_000_000  # max floats per vectorised chunk of candidate arrangements
_ROWS = np.array(
    [row for row in itertools.product((-1, 0, 1), repeat=3) if any(row)], dtype=np.float64
)  # (26, 3) candidate rows of M


def wrap_unit(frac_coords: np.ndarray) -> np.ndarray:
    """Fractional coordinates wrapped into [0, 1): x - floor(x), with results that round to 1.0
    (e.g. -1e-17 + 1) set to 0.0 and -0.0 made 0.0."""
    wrapped = frac_coords - np.floor(frac_coords)
    wrapped[wrapped >= 1.0] = 0.0
    return wrapped + 0.0


def niggli_cell(
    lattice: np.ndarray,  # (3, 3) rows a, b, c
    frac_coords: np.ndarray,  # (n, 3)
) -> tuple[np.ndarray, np.ndarray]:
    """The Niggli-reduced cell of pymatgen's `Lattice.get_niggli_reduced_lattice` (the cell of
    `Structure.get_reduced_structure()`), as (lattice (3, 3), wrapped frac (n, 3)).

    The reduced rows are integer combinations `T @ lattice` (det T = +-1) of the input rows, so the
    Cartesian positions are kept: frac' = frac @ T^-1, then wrapped into [0, 1). CrystalError for
    a lattice that has no reduced cell (non-finite or degenerate).
    """
    if not np.isfinite(lattice).all():
        raise CrystalError("non_finite", "the lattice contains NaN or infinite values")
    if abs(np.linalg.det(lattice)) <= 1e-9 * max(np.abs(lattice).max(), 1.0) ** 3:
        raise CrystalError("small_volume", "a cell of zero volume has no reduced cell")
    try:
        reduced = Lattice(lattice).get_niggli_reduced_lattice().matrix  # (3, 3)
    except ValueError as exc:
        raise CrystalError("bad_cell", f"pymatgen found no Niggli cell: {exc}") from None
    transform = np.rint(reduced @ np.linalg.inv(lattice))  # (3, 3) integer, det +-1
    inverse = np.rint(np.linalg.inv(transform))  # (3, 3) integer
    return transform @ lattice, wrap_unit(frac_coords @ inverse)


def content_hash(
    lattice: np.ndarray,  # (3, 3)
    frac_coords: np.ndarray,  # (n, 3)
    atomic_numbers: np.ndarray,  # (n,)
) -> str:
    """Hex SHA-256 of the canonical arrangement described in the module docstring."""
    reduced, frac = niggli_cell(lattice, frac_coords)
    bases = short_bases(reduced @ reduced.T)
    key = _smallest_key(reduced @ reduced.T, frac, np.asarray(atomic_numbers), bases)
    return hashlib.sha256(HASH_VERSION + key.astype("<i8").tobytes()).hexdigest()


def short_bases(metric: np.ndarray) -> np.ndarray:
    """(k, 3, 3) integer matrices M (entries in {-1, 0, 1}, det +-1) whose bases M R have the
    row lengths of R (relative tolerance 1e-4), for the metric G = R R^T of a reduced cell R."""
    norms = np.einsum("ri,ij,rj->r", _ROWS, metric, _ROWS)  # (26,) squared lengths
    tolerance = 2 * _LENGTH_RTOL * np.diag(metric)  # on squared lengths
    choices = [_ROWS[np.abs(norms - metric[i, i]) <= tolerance[i]] for i in range(3)]
    grid = np.meshgrid(*(np.arange(len(rows)) for rows in choices), indexing="ij")
    mats = np.stack(
        [rows[index.ravel()] for rows, index in zip(choices, grid, strict=True)], axis=1
    )
    return mats[np.isclose(np.abs(np.linalg.det(mats)), 1.0)]


def _smallest_key(
    metric: np.ndarray,  # (3, 3)
    frac: np.ndarray,  # (n, 3)
    atomic_numbers: np.ndarray,  # (n,)
    bases: np.ndarray,  # (k, 3, 3)
) -> np.ndarray:
    """The lexicographically smallest (6 + n,) key over bases x origins."""
    metrics = bases @ metric @ bases.transpose(0, 2, 1)  # (k, 3, 3)
    upper = metrics[:, *np.triu_indices(3)]  # (k, 6)
    lattice_keys = np.rint(upper * _METRIC_QUANTA_PER_A2).astype(np.int64)
    if len(atomic_numbers) == 0:
        return lattice_keys[np.lexsort(lattice_keys.T[::-1])[0]]
    elements, counts = np.unique(atomic_numbers, return_counts=True)
    origins = frac[atomic_numbers == elements[np.argmin(counts)]]  # (o, 3) rarest, lighter on tie
    shifted = frac[None, :, :] - origins[:, None, :]  # (o, n, 3)
    inverses = np.rint(np.linalg.inv(bases))  # (k, 3, 3): frac' = frac @ M^-1
    chunk = max(1, _CANDIDATE_CHUNK // shifted.size)
    best = None
    for start in range(0, len(bases), chunk):
        coords = shifted[None] @ inverses[start : start + chunk, None]  # (c, o, n, 3)
        sites = _site_keys(coords.reshape(-1, *frac.shape), atomic_numbers)  # (c * o, n)
        lattice = np.repeat(lattice_keys[start : start + chunk], len(origins), axis=0)
        keys = np.concatenate([lattice, sites], axis=1)  # (c * o, 6 + n)
        if best is not None:
            keys = np.concatenate([best[None, :], keys])
        best = keys[np.lexsort(keys.T[::-1])[0]]
    return best


def _site_keys(coords: np.ndarray, atomic_numbers: np.ndarray) -> np.ndarray:
    """(c, n) sorted int64 keys Z * 2^51 + q_a * 2^34 + q_b * 2^17 + q_c for (c, n, 3) coords."""
    modulus = 1 << _FRAC_BITS
    q = np.mod(np.floor(coords * modulus + _FRAC_OFFSET).astype(np.int64), modulus)  # (c, n, 3)
    keys = atomic_numbers.astype(np.int64) << (3 * _FRAC_BITS)
    keys = keys + (q[..., 0] << (2 * _FRAC_BITS)) + (q[..., 1] << _FRAC_BITS) + q[..., 2]
    return np.sort(keys, axis=1)
