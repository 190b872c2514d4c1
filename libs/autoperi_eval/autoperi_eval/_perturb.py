"""Controlled degradation: Gaussian noise on positions and lattices (for calibration runs)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pymatgen.core import Lattice, Structure


def perturb(
    structures: Sequence[Structure], sigma_pos: float, sigma_lattice: float, seed: int = 0
) -> list[Structure]:
    """Noisy copies: lattice L' = L (I + sigma_lattice E) with E (3, 3) standard normal, then
    Cartesian positions moved by sigma_pos (Angstrom) standard normal noise in the new cell.
    Species and order are kept; one seeded generator draws all noise in input order."""
    rng = np.random.default_rng(seed)
    out = []
    for structure in structures:
        lattice = structure.lattice.matrix @ (
            np.eye(3) + sigma_lattice * rng.standard_normal((3, 3))
        )
        cart = structure.frac_coords @ lattice + sigma_pos * rng.standard_normal(
            (len(structure), 3)
        )
        frac = cart @ np.linalg.inv(lattice)
        out.append(Structure(Lattice(lattice), structure.species, frac))
    return out
