"""Field names of crystal batches and periodic graphs, declared once with their shapes.

Every module (featuriser, model, services) refers to fields through these constants. Shapes use
``B`` crystals, ``N`` atoms (all crystals concatenated) and ``E`` directed edges.
"""

from typing import Final

# --- per crystal -------------------------------------------------------------------------------
LATTICE: Final[str] = (
    "lattice"  # (B, 3, 3) float | rows are the lattice vectors a, b, c in Angstrom
)
NUM_ATOMS: Final[str] = "num_atoms"  # (B,) int64 | atoms in each crystal
LATTICE_PARAMS: Final[str] = (
    "lattice_params"  # (B, 6) float | a, b, c (A), alpha, beta, gamma (deg)
)
VOLUME: Final[str] = "volume"  # (B,) float | cell volume |det L| in A^3
CRYSTAL_HASH: Final[str] = "crystal_hash"  # (B,) list[str] | Crystal.content_hash() of each crystal
CRYSTAL_ID: Final[str] = "crystal_id"  # (B,) list[str] | record id (e.g. material_id)
PROPERTIES: Final[str] = "properties"  # dict[str, (B,) float] | scalar properties, NaN if missing

# --- per atom ----------------------------------------------------------------------------------
FRAC_COORDS: Final[str] = "frac_coords"  # (N, 3) float | fractional coordinates, R = X @ L
CART_COORDS: Final[str] = "cart_coords"  # (N, 3) float | Cartesian positions in Angstrom
ATOMIC_NUMBERS: Final[str] = "atomic_numbers"  # (N,) int64 | element of each atom (Z)
BATCH: Final[str] = "batch"  # (N,) int64 | index of the crystal each atom belongs to (sorted)
ATOM_OFFSETS: Final[str] = "atom_offsets"  # (B + 1,) int64 | first atom of crystal b is offsets[b]

# --- per edge (periodic multigraph: edge i -> j + k) --------------------------------------------
EDGE_INDEX: Final[str] = "edge_index"  # (2, E) int64 | [source i, target j], global atom indices
CELL_OFFSETS: Final[str] = "cell_offsets"  # (E, 3) int64 | image k in Z^3 of the target atom j
EDGE_VECTORS: Final[str] = "edge_vectors"  # (E, 3) float | r_j + k @ L - r_i in Angstrom
EDGE_LENGTHS: Final[str] = "edge_lengths"  # (E,) float | |edge_vectors|
EDGE_OFFSETS: Final[str] = "edge_offsets"  # (B + 1,) int64 | first edge of crystal b is offsets[b]
