"""Pure, batched periodic geometry in torch: lattices, the flat torus, symmetric matrix functions,
the GemsDiff Lie-algebra basis and periodic radius / kNN graphs. Imports only torch and numpy.
"""

from periodic import keys
from periodic._batching import BatchLayout, batch_layout
from periodic._knn import knn_graph
from periodic._lattice import (
    cart_to_frac,
    cell_heights,
    frac_to_cart,
    lattice_to_params,
    params_to_lattice,
    per_atom_lattice,
    volume,
)
from periodic._lie import (
    ROTATION,
    SHAPE,
    SYMMETRIC,
    VOLUME,
    lie_basis,
    lie_coefficients_to_matrix,
    matrix_to_lie_coefficients,
)
from periodic._order import lexsort, sort_edges
from periodic._radius import NeighborList, PeriodicGraph, edge_vectors, neighbor_list, radius_graph
from periodic._symmat import polar_decomposition, polar_log_stretch, sym_expm, sym_logm
from periodic._torus import torus_expmap, torus_logmap, wrap, wrap_delta

__all__ = [
    "ROTATION",
    "SHAPE",
    "SYMMETRIC",
    "VOLUME",
    "BatchLayout",
    "NeighborList",
    "PeriodicGraph",
    "batch_layout",
    "cart_to_frac",
    "cell_heights",
    "edge_vectors",
    "frac_to_cart",
    "keys",
    "knn_graph",
    "lattice_to_params",
    "lexsort",
    "lie_basis",
    "lie_coefficients_to_matrix",
    "matrix_to_lie_coefficients",
    "neighbor_list",
    "params_to_lattice",
    "per_atom_lattice",
    "polar_decomposition",
    "polar_log_stretch",
    "radius_graph",
    "sort_edges",
    "sym_expm",
    "sym_logm",
    "torus_expmap",
    "torus_logmap",
    "volume",
    "wrap",
    "wrap_delta",
]
