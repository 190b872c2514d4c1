"""Dataset statistics for FeatureStatistics: moments of cell and property values, element counts."""

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from xtal import Crystal


def moments(values: Sequence[float] | np.ndarray) -> dict[str, float]:
    """Mean, population std, min, max and count of the finite values."""
    array = np.asarray(values, dtype=float)
    array = array[np.isfinite(array)]
    if array.size == 0:
        return {"mean": math.nan, "std": math.nan, "min": math.nan, "max": math.nan, "count": 0}
    return {
        "mean": float(array.mean()),
        "std": float(array.std()),
        "min": float(array.min()),
        "max": float(array.max()),
        "count": int(array.size),
    }


def lattice_parameters(lattices: np.ndarray) -> np.ndarray:
    """(B, 3, 3) lattices (rows a, b, c) -> (B, 6): lengths in Angstrom, angles in degrees
    (alpha between b and c, beta between a and c, gamma between a and b)."""
    lengths = np.linalg.norm(lattices, axis=-1)  # (B, 3)
    angles = []
    for i, j in ((1, 2), (0, 2), (0, 1)):
        cos = np.einsum("bk,bk->b", lattices[:, i], lattices[:, j]) / (
            lengths[:, i] * lengths[:, j]
        )
        angles.append(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))
    return np.concatenate([lengths, np.stack(angles, axis=1)], axis=1)


def dataset_statistics(crystals: Sequence[Crystal], neighbors: np.ndarray | None) -> dict[str, Any]:
    """JSON-ready statistics of `crystals`; `neighbors` is (N,) neighbours per atom when the
    featuriser built graphs."""
    sizes = np.array([c.num_atoms for c in crystals])
    params = lattice_parameters(np.stack([c.lattice for c in crystals]))  # (B, 6)
    numbers = np.concatenate([c.atomic_numbers for c in crystals])
    elements, counts = np.unique(numbers, return_counts=True)
    names = sorted({name for c in crystals for name in c.properties})
    out = {
        "num_crystals": len(crystals),
        "num_atoms": int(sizes.sum()),
        "atoms_per_cell": moments(sizes),
        "volume_per_atom": moments(np.array([c.volume for c in crystals]) / sizes),
        "element_counts": {str(int(z)): int(n) for z, n in zip(elements, counts, strict=True)},
        "properties": {
            n: moments([c.properties.get(n, math.nan) for c in crystals]) for n in names
        },
    }
    for column, name in enumerate(("a", "b", "c", "alpha", "beta", "gamma")):
        out[name] = moments(params[:, column])
    if neighbors is not None:
        out["neighbors_per_atom"] = moments(neighbors)
    return out
