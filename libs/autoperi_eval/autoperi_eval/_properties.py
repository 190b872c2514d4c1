"""Property distributions: Wasserstein distances (SCIENCE 5.3) and the Frechet distance (5.5).

Protocol source: txie-93/cdvae `scripts/compute_metrics.py` (`GenEval`): 1,000 valid samples
drawn at random (CDVAE unseeded, here seeded) against the WHOLE reference split (no validity
filter on the reference); density is pymatgen's `Structure.density` (g/cm^3), the number of
elements is the number of distinct species, and `scipy.stats.wasserstein_distance` is W1.
"""

from __future__ import annotations

import numpy as np
from pymatgen.core import Structure
from scipy import linalg
from scipy.stats import wasserstein_distance


def density(structure: Structure) -> float:
    """Mass density in g/cm^3."""
    return float(structure.density)


def n_elements(structure: Structure) -> int:
    """Number of distinct elements."""
    return len(set(structure.species))


def property_subset(candidates: np.ndarray, n: int | None, seed: int) -> np.ndarray:
    """Indices of `n` candidates drawn without replacement with a seeded generator (all if n is
    None or there are fewer candidates), in ascending order."""
    candidates = np.asarray(candidates, dtype=np.int64)
    if n is None or len(candidates) <= n:
        return np.sort(candidates)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(candidates, size=n, replace=False))


def w1(samples: np.ndarray, reference: np.ndarray) -> float:
    """Wasserstein-1 distance between two 1-d empirical distributions (non-finite values are
    dropped; NaN when either side is empty)."""
    a = np.asarray(samples, dtype=float)
    b = np.asarray(reference, dtype=float)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if len(a) == 0 or len(b) == 0:
        return float("nan")
    return float(wasserstein_distance(a, b))


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to feature sets a (n, d) and b (m, d):
    |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)). Rows with non-finite values are dropped.
    """
    a = a[np.isfinite(a).all(axis=1)]
    b = b[np.isfinite(b).all(axis=1)]
    if len(a) < 2 or len(b) < 2:
        return float("nan")
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(cov_a @ cov_b)
    if not np.isfinite(root).all():
        eps = 1e-6 * np.eye(len(mu_a))
        root = linalg.sqrtm((cov_a + eps) @ (cov_b + eps))
    trace = np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.trace(np.real(root))
    return float(np.sum((mu_a - mu_b) ** 2) + trace)
