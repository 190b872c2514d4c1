"""The capped periodic graph against pymatgen's neighbour list and an independent cap."""

from __future__ import annotations

import numpy as np
import torch
from pymatgen.core import Lattice, Structure

from autoperi_model._graph import TIE_TOLERANCE, build_graph
from autoperi_model.testing import random_batch


def _reference_edges(lat, frac, z, cutoff, cap, start):
    """(i, j, k) -> length from pymatgen, keeping per atom the edges up to its cap-th length."""
    structure = Structure(Lattice(lat), z, frac, coords_are_cartesian=False)
    src, dst, images, dist = structure.get_neighbor_list(cutoff)
    edges = {}
    for i in range(len(z)):
        mine = np.flatnonzero(src == i)
        if len(mine) == 0:
            continue
        bound = np.sort(dist[mine])[min(cap, len(mine)) - 1] * (1 + TIE_TOLERANCE)
        for e in mine[dist[mine] <= bound]:
            edges[(start + i, start + int(dst[e]), *images[e].astype(int))] = dist[e]
    return edges


def test_graph_matches_pymatgen_edge_for_edge():
    batch = random_batch((1, 4, 6, 2), seed=7)
    cutoff, cap = 4.5, 10
    graph = build_graph(batch, cutoff, cap)
    ours = {
        (int(i), int(j), *map(int, k)): float(d)
        for i, j, k, d in zip(
            *graph.edge_index, graph.cell_offsets, graph.edge_lengths, strict=True
        )
    }
    reference, start = {}, 0
    for lat, z, frac in batch.arrays():
        reference.update(_reference_edges(lat, frac, z, cutoff, cap, start))
        start += len(z)
    assert ours.keys() == reference.keys()
    assert max(abs(ours[e] - reference[e]) for e in ours) < 1e-9


def test_tied_shells_are_kept_whole():
    lattice = [np.eye(3) * 4.0]
    frac = [np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]])]
    from autoperi_model._batch import CrystalBatch

    batch = CrystalBatch.from_arrays(lattice, frac, [np.array([38, 22])], torch.float64)
    graph = build_graph(batch, 6.0, 7)  # 8 neighbours at 3.46 A, then 6 self-images at 4 A
    counts = torch.bincount(graph.edge_index[0])
    assert counts.tolist() == [8, 8]
