"""COV-R / COV-P against a direct transcription of the definition, and the standardisation."""

import numpy as np
import pytest

from autoperi_eval import compute_coverage, standardise_comp
from autoperi_eval._fingerprints import comp_scaler


def brute_force(gs, gc, rs, rc, n_gen, s_cut, c_cut):
    recall = [
        min(np.linalg.norm(gs - r, axis=1)) <= s_cut
        and min(np.linalg.norm(gc - q, axis=1)) <= c_cut
        for r, q in zip(rs, rc, strict=True)
    ]
    precision = [
        min(np.linalg.norm(rs - g, axis=1)) <= s_cut
        and min(np.linalg.norm(rc - q, axis=1)) <= c_cut
        for g, q in zip(gs, gc, strict=True)
    ]
    return np.mean(recall), np.sum(precision) / n_gen


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_definition(seed: int) -> None:
    rng = np.random.default_rng(seed)
    gs, gc = rng.random((70, 5)), rng.normal(size=(70, 4)) * 2
    rs, rc = rng.random((50, 5)), rng.normal(size=(50, 4)) * 2
    cov = compute_coverage(
        gs, gc, rs, rc, n_generated=80, struct_cutoff=0.5, comp_cutoff=1.5, block=16
    )
    recall, precision = brute_force(gs, gc, rs, rc, 80, 0.5, 1.5)
    assert cov.cov_recall == pytest.approx(recall)
    assert cov.cov_precision == pytest.approx(precision)
    assert 0 < cov.cov_recall < 1


def test_identical_sets_cover_fully_and_precision_counts_dropped() -> None:
    rng = np.random.default_rng(0)
    s, c = rng.random((30, 61)), rng.random((30, 132))
    cov = compute_coverage(s, c, s, c, n_generated=30, struct_cutoff=0.0, comp_cutoff=0.0)
    assert cov.cov_recall == 1.0 and cov.cov_precision == 1.0
    # ten generated crystals without a fingerprint still count in the COV-P denominator
    cov = compute_coverage(s, c, s, c, n_generated=40, struct_cutoff=0.0, comp_cutoff=0.0)
    assert cov.cov_precision == pytest.approx(0.75)


def test_standardisation_uses_cdvae_constants_and_zeroes_nan() -> None:
    means, stds = comp_scaler()
    assert means.shape == (132,) and stds.shape == (132,) and (stds > 0).all()
    raw = np.vstack([means + stds, np.full(132, np.nan)])
    out = standardise_comp(raw)
    np.testing.assert_allclose(out[0], 1.0)
    np.testing.assert_array_equal(out[1], 0.0)
