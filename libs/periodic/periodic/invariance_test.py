"""Radius and kNN graphs under the symmetries of a crystal, batching, gradients and errors."""

import numpy as np
import pytest
import torch

from periodic import (
    edge_vectors,
    knn_graph,
    neighbor_list,
    params_to_lattice,
    radius_graph,
    sort_edges,
    wrap,
)

SEEDS = range(8)
CUTOFF = 4.5


def _crystal(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A random skewed cell with 1-7 atoms: lattice (3, 3), frac (n, 3), float64."""
    rng = np.random.default_rng(seed)
    lengths = torch.tensor(rng.uniform(2.5, 6.0, 3))
    angles = torch.tensor(rng.uniform(60.0, 120.0, 3))
    frac = torch.tensor(rng.uniform(0.0, 1.0, (int(rng.integers(1, 8)), 3)))
    return params_to_lattice(lengths, angles), frac


def _unimodular(rng: np.random.Generator) -> np.ndarray:
    """A random integer matrix with entries in [-3, 3] and determinant +-1."""
    while True:
        m = rng.integers(-3, 4, size=(3, 3))
        if round(abs(np.linalg.det(m))) == 1:
            return m


def _signature(graph, perm: np.ndarray | None = None, frame: np.ndarray | None = None):
    """Edges as sorted rows (i, j, vector), relabelled by ``perm`` and rotated back by ``frame``."""
    src, dst = graph.edge_index.numpy()
    vectors = graph.edge_vectors.detach().numpy()
    if perm is not None:
        src, dst = perm[src], perm[dst]
    if frame is not None:
        vectors = vectors @ frame
    order = np.lexsort([*np.round(vectors, 6).T[::-1], dst, src])
    return src[order], dst[order], vectors[order]


def _assert_same(a, b) -> None:
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_allclose(a[2], b[2], atol=1e-9)


def _untied_k(lattice: torch.Tensor, frac: torch.Tensor, start: int = 12) -> int:
    """The smallest k >= start whose k-th and (k+1)-th neighbour distances differ for every atom.

    Equal distances (e.g. the self-images +k and -k) make the kNN selection depend on the labels
    of the tied images, which change under relabelling; invariance holds when no tie is cut.
    """
    graph = radius_graph(lattice, frac, 12.0)
    rows = [
        np.sort(graph.edge_lengths[graph.edge_index[0] == i].detach().numpy())
        for i in range(len(frac))
    ]
    k = start
    while any(row[k] - row[k - 1] < 1e-6 for row in rows):
        k += 1
    return k


def _graph(kind: str, lattice: torch.Tensor, frac: torch.Tensor):
    if kind == "radius":
        return radius_graph(lattice, frac, CUTOFF)
    return knn_graph(lattice, frac, _untied_k(lattice, frac))


@pytest.fixture(params=["radius", "knn"])
def kind(request) -> str:
    return request.param


@pytest.mark.parametrize("seed", SEEDS)
def test_rotation_and_reflection(kind: str, seed: int) -> None:
    lattice, frac = _crystal(seed)
    rng = np.random.default_rng(100 + seed)
    q = np.linalg.qr(rng.normal(size=(3, 3)))[0]  # orthogonal, det +-1
    for frame in (q, q * np.array([1.0, 1.0, -1.0])):
        moved = _graph(kind, lattice @ torch.tensor(frame).T, frac)
        _assert_same(_signature(moved, frame=frame), _signature(_graph(kind, lattice, frac)))


@pytest.mark.parametrize("seed", SEEDS)
def test_translation_and_image_shifts(kind: str, seed: int) -> None:
    lattice, frac = _crystal(seed)
    rng = np.random.default_rng(200 + seed)
    shifted = wrap(frac + torch.tensor(rng.uniform(-1, 1, 3)))
    images = frac + torch.tensor(rng.integers(-2, 3, size=frac.shape)).double()
    reference = _signature(_graph(kind, lattice, frac))
    _assert_same(_signature(_graph(kind, lattice, shifted)), reference)
    _assert_same(_signature(_graph(kind, lattice, images)), reference)


@pytest.mark.parametrize("seed", SEEDS)
def test_permutation(kind: str, seed: int) -> None:
    lattice, frac = _crystal(seed)
    perm = np.random.default_rng(300 + seed).permutation(frac.shape[0])
    moved = _graph(kind, lattice, frac[torch.tensor(perm)])
    _assert_same(_signature(moved, perm=perm), _signature(_graph(kind, lattice, frac)))


@pytest.mark.parametrize("seed", SEEDS)
def test_change_of_cell_basis(kind: str, seed: int) -> None:
    lattice, frac = _crystal(seed)
    m = torch.tensor(_unimodular(np.random.default_rng(400 + seed))).double()
    moved = _graph(kind, m @ lattice, wrap(frac @ torch.linalg.inv(m)))
    _assert_same(_signature(moved), _signature(_graph(kind, lattice, frac)))


def test_batch_equals_single_crystals(kind: str) -> None:
    crystals = [_crystal(seed) for seed in SEEDS]
    lattice = torch.stack([lat for lat, _ in crystals])
    frac = torch.cat([f for _, f in crystals])
    num_atoms = torch.tensor([f.shape[0] for _, f in crystals])
    batched = (
        radius_graph(lattice, frac, CUTOFF, num_atoms=num_atoms)
        if kind == "radius"
        else knn_graph(lattice, frac, 12, num_atoms=num_atoms)
    )
    first = np.cumsum([0, *num_atoms.tolist()])
    for (lat, f), start, stop in zip(crystals, first[:-1], first[1:], strict=True):
        single = radius_graph(lat, f, CUTOFF) if kind == "radius" else knn_graph(lat, f, 12)
        mine = (batched.edge_index[0] >= start) & (batched.edge_index[0] < stop)
        part = batched._replace(
            edge_index=batched.edge_index[:, mine] - int(start),
            edge_vectors=batched.edge_vectors[mine],
        )
        _assert_same(_signature(part), _signature(single))


def test_gradcheck_distances_wrt_lattice_and_coordinates(kind: str) -> None:
    lattice, frac = _crystal(3)
    lattice.requires_grad_(), frac.requires_grad_()

    def lengths(lat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return _graph(kind, lat, x).edge_lengths

    assert torch.autograd.gradcheck(lengths, (lattice, frac))


def test_float32_inputs_give_the_float64_edge_set() -> None:
    lattice, frac = _crystal(5)
    g64, g32 = (
        radius_graph(lattice, frac, CUTOFF),
        radius_graph(lattice.float(), frac.float(), CUTOFF),
    )
    assert torch.equal(g64.edge_index, g32.edge_index)
    assert g32.edge_vectors.dtype == torch.float32
    torch.testing.assert_close(g32.edge_lengths.double(), g64.edge_lengths, atol=1e-5, rtol=0)


def test_empty_crystal_and_errors() -> None:
    lattice, frac = _crystal(2)
    lattices = torch.stack([lattice, lattice])
    graph = radius_graph(lattices, frac, CUTOFF, num_atoms=torch.tensor([0, frac.shape[0]]))
    assert torch.equal(graph.edge_index, radius_graph(lattice, frac, CUTOFF).edge_index)
    with pytest.raises(ValueError, match="sorted"):
        radius_graph(lattices, frac[:2], CUTOFF, batch=torch.tensor([1, 0]))
    with pytest.raises(ValueError, match="positive"):
        radius_graph(lattice, frac, -1.0)
    with pytest.raises(ValueError, match="degenerate"):
        radius_graph(torch.zeros(3, 3, dtype=torch.float64), frac, CUTOFF)
    with pytest.raises(ValueError, match="sum to"):
        radius_graph(lattices, frac, CUTOFF, num_atoms=torch.tensor([1, 1]))


def test_vectors_agree_with_indices_offsets_and_grad_mode() -> None:
    lattice, frac = _crystal(6)
    plain = radius_graph(lattice, frac, 7.0)
    batch = torch.zeros(frac.shape[0], dtype=torch.long)
    vectors, lengths = edge_vectors(
        lattice.unsqueeze(0), frac, plain.edge_index, plain.cell_offsets, batch
    )
    torch.testing.assert_close(plain.edge_vectors, vectors, atol=1e-12, rtol=0)
    torch.testing.assert_close(plain.edge_lengths, lengths, atol=1e-12, rtol=0)
    tracked = radius_graph(lattice.clone().requires_grad_(), frac, 7.0)
    assert torch.equal(tracked.edge_index, plain.edge_index)
    torch.testing.assert_close(
        tracked.edge_vectors.detach(), plain.edge_vectors, atol=1e-12, rtol=0
    )


def test_neighbor_list_is_the_radius_graph_without_vectors() -> None:
    crystals = [_crystal(seed) for seed in SEEDS]
    lattice = torch.stack([lat for lat, _ in crystals])
    frac = torch.cat([f for _, f in crystals])
    num_atoms = torch.tensor([f.shape[0] for _, f in crystals])
    graph = radius_graph(lattice, frac, 6.0, num_atoms=num_atoms)
    neighbors = neighbor_list(lattice, frac, 6.0, num_atoms=num_atoms)
    assert torch.equal(graph.edge_index, neighbors.edge_index)
    assert torch.equal(graph.cell_offsets, neighbors.cell_offsets)
    torch.testing.assert_close(graph.edge_lengths, neighbors.edge_lengths, atol=1e-12, rtol=0)


def test_sort_edges_orders_by_source_target_image() -> None:
    lattice, frac = _crystal(4)
    graph = radius_graph(lattice, frac, 6.0)
    ordered = sort_edges(graph)
    keys = torch.cat([ordered.edge_index.T, ordered.cell_offsets], dim=1).tolist()
    assert keys == sorted(keys)
    _assert_same(_signature(ordered), _signature(graph))
    assert type(sort_edges(neighbor_list(lattice, frac, 6.0))).__name__ == "NeighborList"
