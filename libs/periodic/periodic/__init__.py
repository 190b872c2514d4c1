"""Pure, batched periodic geometry in torch: lattices, the flat torus, symmetric matrix functions,
the GemsDiff Lie-algebra basis, periodic radius / kNN graphs and space-group projections.
Imports only torch and numpy.
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
from periodic._symmetry import (
    SymmetryTable,
    cartesian_operations,
    crystal_table,
    expand_orbits,
    fixed_part,
    free_parameters,
    from_free_parameters,
    invariant_cell,
    symmetric_stretch,
    symmetrize_lattice,
    symmetrize_lattice_field,
    symmetrize_vectors,
)
from periodic._torus import torus_expmap, torus_logmap, wrap, wrap_delta

__all__ = [
    "ROTATION",
    "SHAPE",
    "SYMMETRIC",
    "VOLUME",
    "BatchLayout",
    "NeighborList",
    "PeriodicGraph",
    "SymmetryTable",
    "batch_layout",
    "cart_to_frac",
    "cartesian_operations",
    "cell_heights",
    "crystal_table",
    "edge_vectors",
    "expand_orbits",
    "fixed_part",
    "frac_to_cart",
    "free_parameters",
    "from_free_parameters",
    "invariant_cell",
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
    "symmetric_stretch",
    "symmetrize_lattice",
    "symmetrize_lattice_field",
    "symmetrize_vectors",
    "torus_expmap",
    "torus_logmap",
    "volume",
    "wrap",
    "wrap_delta",
]
