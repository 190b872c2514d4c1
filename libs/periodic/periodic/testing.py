"""Edge-for-edge comparison of periodic neighbour lists (numpy only), for tests and benchmarks.

A neighbour list is ``(source, target, offsets, distances)`` with global atom indices; the
reference is typically pymatgen's ``Structure.get_neighbor_list`` (offsets rounded to integers,
atom indices shifted to the batch's global numbering).
"""

from dataclasses import dataclass

import numpy as np

BOUNDARY_TOLERANCE = 1e-6  # Angstrom: pairs this close to the cutoff may legitimately differ


@dataclass(frozen=True)
class EdgeComparison:
    """Outcome of :func:`compare_edge_lists`."""

    matched: int  # edges present in both lists with the same (i, j, k)
    only_ours: int  # edges away from the cutoff found only by us
    only_reference: int  # edges away from the cutoff found only by the reference
    boundary_ours: int  # our edges within BOUNDARY_TOLERANCE of the cutoff (not compared)
    boundary_reference: int  # reference edges within BOUNDARY_TOLERANCE of the cutoff
    max_distance_error: float  # largest |d_ours - d_ref| over matched edges

    @property
    def identical(self) -> bool:
        """True when both lists agree edge for edge (boundary pairs aside), distances to 1e-6."""
        return self.only_ours == 0 and self.only_reference == 0 and self.max_distance_error < 1e-6


def _sorted_rows(
    source: np.ndarray, target: np.ndarray, offsets: np.ndarray, distances: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    keys = np.column_stack([source, target, np.rint(offsets)]).astype(np.int64)  # (E, 5)
    order = np.lexsort(keys.T[::-1])
    return keys[order], np.asarray(distances, dtype=np.float64)[order]


def compare_edge_lists(
    ours: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    reference: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    cutoff: float,
    boundary_tolerance: float = BOUNDARY_TOLERANCE,
) -> EdgeComparison:
    """Compare two neighbour lists ``(source, target, offsets, distances)`` by their (i, j, k).

    Edges whose distance lies within ``boundary_tolerance`` of ``cutoff`` are counted apart and
    left out of the comparison; offsets are rounded to integers.
    """
    parts = []
    for source, target, offsets, distances in (ours, reference):
        near = np.abs(np.asarray(distances) - cutoff) < boundary_tolerance
        keep = ~near
        rows = _sorted_rows(source[keep], target[keep], offsets[keep], distances[keep])
        parts.append((rows, int(near.sum())))
    (keys_a, dist_a), boundary_a = parts[0]
    (keys_b, dist_b), boundary_b = parts[1]
    common, index_a, index_b = _intersect_rows(keys_a, keys_b)
    error = float(np.abs(dist_a[index_a] - dist_b[index_b]).max()) if common else 0.0
    return EdgeComparison(
        matched=common,
        only_ours=len(keys_a) - common,
        only_reference=len(keys_b) - common,
        boundary_ours=boundary_a,
        boundary_reference=boundary_b,
        max_distance_error=error,
    )


def _intersect_rows(a: np.ndarray, b: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """Rows common to two integer row arrays: count and indices into each (first occurrence)."""
    view = np.dtype((np.void, a.dtype.itemsize * a.shape[1]))
    rows_a = np.ascontiguousarray(a).view(view).ravel()
    rows_b = np.ascontiguousarray(b).view(view).ravel()
    _, index_a, index_b = np.intersect1d(rows_a, rows_b, return_indices=True)
    return len(index_a), index_a, index_b
