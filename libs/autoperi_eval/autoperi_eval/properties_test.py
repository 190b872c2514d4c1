"""Wasserstein and Frechet distances against closed forms."""

import numpy as np
import pytest
from scipy.stats import wasserstein_distance

from autoperi_eval import frechet_distance, w1
from autoperi_eval._properties import property_subset


def test_w1_drops_non_finite_and_matches_scipy() -> None:
    a, b = np.array([1.0, 2.0, np.nan, 4.0]), np.array([1.5, 2.5])
    assert w1(a, b) == pytest.approx(wasserstein_distance([1, 2, 4], [1.5, 2.5]))
    assert w1(a, a) == 0.0
    assert np.isnan(w1(np.array([np.nan]), b))


def test_frechet_closed_forms() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 3))
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-8)
    # same covariance, shifted mean: the distance is the squared shift
    shift = np.array([1.0, -2.0, 0.5])
    assert frechet_distance(x, x + shift) == pytest.approx(np.sum(shift**2), rel=1e-6)
    # isotropic scales s1, s2 in d dims: d (s1 - s2)^2 for exact covariances
    y = x * 3.0
    expected = 3 * (np.sqrt(np.var(x, axis=0, ddof=1).mean()) * 2) ** 2
    assert frechet_distance(x, y) == pytest.approx(expected, rel=0.05)


def test_property_subset_is_seeded_and_bounded() -> None:
    candidates = np.arange(0, 5000, 2)
    a = property_subset(candidates, 1000, seed=7)
    b = property_subset(candidates, 1000, seed=7)
    np.testing.assert_array_equal(a, b)
    assert len(a) == 1000 and len(set(a)) == 1000 and set(a) <= set(candidates)
    assert len(property_subset(candidates[:10], 1000, seed=7)) == 10
