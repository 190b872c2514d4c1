"""CHGNet's crystal graphs built with array operations instead of Python edge objects.

`chgnet.graph.CrystalGraphConverter` pairs the directed edges of pymatgen's neighbour list into
bonds in C, then turns every edge into a Python object and walks them to list the angles
(~2 ms per MP-20 crystal, 1.5 of them in Python). `ArrayGraphConverter` computes the same
arrays from the same neighbour list with numpy: the bonds numbered in order of their first
directed edge, and the angles in CHGNet's order (bond by bond, each end in turn, then the
centre's edges grouped by neighbour in order of first appearance). The result is
tensor-for-tensor equal to CHGNet's graph (graph_test), so energies are bit-identical.
"""

import sys

import numpy as np
import torch
from torch import nn


class ArrayGraphConverter(nn.Module):
    """Drop-in for a CHGNet `CrystalGraphConverter` (same cutoffs, same isolated-atom policy);
    `forward(structure, graph_id=None, mp_id=None) -> CrystalGraph`."""

    def __init__(self, like: nn.Module) -> None:
        super().__init__()
        self.atom_graph_cutoff = float(like.atom_graph_cutoff)
        self.bond_graph_cutoff = float(like.bond_graph_cutoff)
        self.on_isolated_atoms = like.on_isolated_atoms

    def forward(self, structure, graph_id=None, mp_id=None):
        from chgnet.graph.crystalgraph import TORCH_DTYPE, CrystalGraph

        center, neighbor, image, distance = structure.get_neighbor_list(
            r=self.atom_graph_cutoff, sites=structure.sites, numerical_tol=1e-8
        )
        n_atoms = len(structure)
        image = np.asarray(image, dtype=np.int64).reshape(-1, 3)
        bonds = pair_bonds(center, neighbor, image)
        first, _, to_bond = bonds
        angles = angle_list(center, neighbor, distance, bonds, self.bond_graph_cutoff, n_atoms)
        self._check_isolated(n_atoms, center, graph_id)
        edges = np.stack([center, neighbor], axis=1)
        return CrystalGraph(
            atomic_number=torch.tensor(structure.atomic_numbers, dtype=torch.int32),
            atom_frac_coord=torch.tensor(
                structure.frac_coords, dtype=TORCH_DTYPE, requires_grad=True
            ),
            atom_graph=_int32(edges) if len(edges) else torch.tensor([], dtype=torch.int32),
            neighbor_image=torch.tensor(image, dtype=TORCH_DTYPE),
            directed2undirected=_int32(to_bond),
            undirected2directed=_int32(first),
            bond_graph=_int32(angles) if len(angles) else torch.tensor([], dtype=torch.int32),
            lattice=torch.tensor(structure.lattice.matrix, dtype=TORCH_DTYPE, requires_grad=True),
            graph_id=graph_id,
            mp_id=mp_id,
            composition=structure.composition.formula,
            atom_graph_cutoff=self.atom_graph_cutoff,
            bond_graph_cutoff=self.bond_graph_cutoff,
        )

    def set_isolated_atom_response(self, on_isolated_atoms: str) -> None:
        """ "ignore", "warn" or "error" on atoms without neighbours (as CHGNet's)."""
        self.on_isolated_atoms = on_isolated_atoms

    def _check_isolated(self, n_atoms: int, center: np.ndarray, graph_id) -> None:
        isolated = n_atoms - len(np.unique(center))
        if not isolated or self.on_isolated_atoms == "ignore":
            return
        message = (
            f"Structure {graph_id=} has {isolated} isolated atom(s) with "
            f"atom_graph_cutoff={self.atom_graph_cutoff}. CHGNet calculation will likely go wrong"
        )
        if self.on_isolated_atoms == "error":
            raise ValueError(message)
        print(message, file=sys.stderr)


def _int32(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.int32))


def pair_bonds(
    center: np.ndarray, neighbor: np.ndarray, image: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bonds of a neighbour list whose entries (i, j, image) come in reverse pairs
    (j, i, -image): (first (n_bonds,), second (n_bonds,), bond of each entry (n_edges,)),
    bonds numbered in order of their first entry. ValueError if an entry has no partner."""
    n = len(center)
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    n_atoms = int(max(center.max(), neighbor.max())) + 1
    span = int(np.abs(image).max())
    key = np.minimum(
        _encode(center, neighbor, image, n_atoms, span),
        _encode(neighbor, center, -image, n_atoms, span),
    )  # the same for an entry and its reverse
    order = np.argsort(key, kind="stable")  # the two entries of a bond side by side, in order
    ranked = key[order]
    unpaired = n % 2 or (ranked[0::2] != ranked[1::2]).any()
    if unpaired or (ranked[1:-1:2] == ranked[2::2]).any():
        raise ValueError("the neighbour list is not symmetric: a bond lacks its reverse edge")
    first, second = order[0::2], order[1::2]
    rank = np.argsort(first, kind="stable")  # bonds numbered by their first entry
    first, second = first[rank], second[rank]
    to_bond = np.empty(n, dtype=np.int64)
    to_bond[first] = to_bond[second] = np.arange(len(first))
    return first, second, to_bond


def _encode(i: np.ndarray, j: np.ndarray, image: np.ndarray, n_atoms: int, span: int) -> np.ndarray:
    """(i, j, image) as one int64 in mixed radix, so that its order is the tuples' order."""
    code = i.astype(np.int64) * n_atoms + j
    for axis in range(3):
        code = code * (2 * span + 1) + (image[:, axis] + span)
    return code


def angle_list(
    center: np.ndarray,
    neighbor: np.ndarray,
    distance: np.ndarray,
    bonds: tuple[np.ndarray, np.ndarray, np.ndarray],
    cutoff: float,
    n_atoms: int,
) -> np.ndarray:
    """CHGNet's bond graph (n_angles, 5) from the edges (i, j, length) of `n_atoms` atoms and
    their `bonds` (`pair_bonds`: first, second edge of each bond, bond of each edge): [centre
    atom, bond, its edge out of the centre, other bond, its edge] for each pair of distinct
    edges out of one atom, both shorter than `cutoff` (the first bond not longer, as CHGNet
    tests it), in CHGNet's order."""
    first, second, to_bond = bonds
    if len(center) == 0:
        return np.zeros((0, 5), dtype=np.int64)
    bonds_in = np.flatnonzero(distance[first] <= cutoff)
    halves = np.stack([first[bonds_in], second[bonds_in]], axis=1).reshape(-1)  # both ends
    ordered, start, count = _edges_by_centre(center, neighbor, distance < cutoff, n_atoms)
    starts, counts = start[center[halves]], count[center[halves]]
    if counts.sum() == 0:
        return np.zeros((0, 5), dtype=np.int64)
    owner = np.repeat(np.arange(len(halves)), counts)
    offset = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    partner = ordered[np.repeat(starts, counts) + offset]
    keep = partner != halves[owner]
    owner, partner = owner[keep], partner[keep]
    edge = halves[owner]
    return np.stack([center[edge], to_bond[edge], edge, to_bond[partner], partner], axis=1)


def _edges_by_centre(
    center: np.ndarray, neighbor: np.ndarray, selected: np.ndarray, n_atoms: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(edges where `selected`, in the order a CHGNet node iterates its neighbours: by centre,
    then by neighbour in order of its first edge, then edge order; start and count of each
    centre's run (n_atoms,))."""
    n = len(center)
    _, pair = np.unique(center * n_atoms + neighbor, return_inverse=True)
    first_of_pair = np.full(pair.max() + 1, n)
    np.minimum.at(first_of_pair, pair, np.arange(n))
    edges = np.flatnonzero(selected)
    ordered = edges[np.lexsort((edges, first_of_pair[pair[edges]], center[edges]))]
    count = np.bincount(center[ordered], minlength=n_atoms)
    return ordered, np.cumsum(count) - count, count


#: Directed atom-graph edges per CHGNet forward. The edge tables (64 float32 features a row) of
#: ~4,000 edges fill one 1 MB L2 cache; past that the forward slows per crystal (one thread, 256
#: MP-20 test crystals: 5.1-5.3 ms at 16 crystals = 7,100 edges a forward, 4.0-4.3 ms at 4,000
#: edges; Perov-5 4.5-4.8 -> 3.6-3.7 ms; forces and stress unchanged within noise).
FORWARD_EDGES = 4000


def edge_groups(graphs: list, max_edges: int, max_graphs: int) -> list[list]:
    """`graphs` (CHGNet CrystalGraphs) cut in order into runs of at most `max_graphs` graphs
    and `max_edges` atom-graph edges; a graph with more edges than that is a run of its own."""
    runs: list[list] = []
    edges = 0
    for graph in graphs:
        size = len(graph.atom_graph)
        if not runs or len(runs[-1]) >= max_graphs or edges + size > max_edges:
            runs.append([])
            edges = 0
        runs[-1].append(graph)
        edges += size
    return runs
