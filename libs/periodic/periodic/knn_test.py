"""kNN graph against a brute-force reference from pymatgen's neighbour list."""

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

from periodic import knn_graph
from periodic._knn import TIE_RESOLUTION


def _reference(structure: Structure, k: int, max_radius: float | None) -> list[tuple]:
    """Per source atom, the k best (rounded distance, j, image) from a large pymatgen list."""
    radius = max_radius if max_radius is not None else 40.0
    centre, neighbour, images, distances = structure.get_neighbor_list(radius)
    rows = []
    for i in range(len(structure)):
        sel = centre == i
        keys = zip(
            np.round(distances[sel] / TIE_RESOLUTION).astype(np.int64),
            neighbour[sel],
            map(tuple, np.rint(images[sel]).astype(int)),
            strict=True,
        )
        rows += [(i, *key) for key in sorted(keys)[:k]]
    return rows


def _ours(structure: Structure, k: int, max_radius: float | None) -> list[tuple]:
    graph = knn_graph(
        torch.tensor(structure.lattice.matrix),
        torch.tensor(structure.frac_coords),
        k,
        max_radius=max_radius,
    )
    rounded = torch.round(graph.edge_lengths / TIE_RESOLUTION).long().tolist()
    src, dst = graph.edge_index.tolist()
    images = map(tuple, graph.cell_offsets.tolist())
    return list(zip(src, rounded, dst, images, strict=True))


def _cases() -> list[tuple[Structure, int, float | None]]:
    rng = np.random.default_rng(9)
    cases = []
    for n in range(24):
        lattice = Lattice.from_parameters(*rng.uniform(2.0, 7.0, 3), *rng.uniform(60, 120, 3))
        n_atoms = int(rng.integers(1, 6))
        structure = Structure(lattice, ["C"] * n_atoms, rng.uniform(-0.5, 1.5, (n_atoms, 3)))
        max_radius = float(rng.uniform(2.0, 6.0)) if n % 3 == 0 else None
        cases.append((structure, int(rng.integers(1, 40)), max_radius))
    cases.append((Structure(Lattice.cubic(3.0), ["C"], [[0, 0, 0]]), 6, None))  # ties
    cases.append((Structure(Lattice.cubic(3.0), ["C"], [[0, 0, 0]]), 7, None))  # tie cut
    return cases


@pytest.mark.parametrize("case", _cases())
def test_knn_matches_brute_force(case: tuple[Structure, int, float | None]) -> None:
    structure, k, max_radius = case
    assert _ours(structure, k, max_radius) == _reference(structure, k, max_radius)


def test_every_atom_has_k_edges_nearest_first() -> None:
    structure = _cases()[1][0]
    graph = knn_graph(
        torch.tensor(structure.lattice.matrix), torch.tensor(structure.frac_coords), 9
    )
    degree = torch.bincount(graph.edge_index[0], minlength=len(structure))
    assert bool((degree == 9).all())
    lengths = graph.edge_lengths.view(len(structure), 9)
    assert bool((lengths[:, 1:] >= lengths[:, :-1] - TIE_RESOLUTION).all())


def test_knn_rejects_bad_k() -> None:
    with pytest.raises(ValueError, match="positive"):
        knn_graph(torch.eye(3, dtype=torch.float64), torch.zeros(1, 3).double(), 0)
