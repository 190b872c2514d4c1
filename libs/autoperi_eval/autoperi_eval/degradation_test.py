"""Controlled degradation: growing Gaussian noise on test crystals lowers the match rate and the
coverage monotonically (seeded, small subset)."""

import itertools

import numpy as np
from autoperi_data import CrystalArrays

from autoperi_eval import Cache, Pool, compute_coverage, perturb
from autoperi_eval._basic import basic_table
from autoperi_eval._fingerprints import compute_fingerprints
from autoperi_eval._match import compute_rms

LEVELS = [(0.0, 0.0), (0.1, 0.02), (0.3, 0.05), (0.6, 0.12)]  # (Angstrom, relative lattice)


def test_noise_lowers_match_rate_and_coverage(load_split, eval_cache_dir) -> None:
    records = load_split("perov_5:test[300:340]")
    truth = [r.structure for r in records]
    cache = Cache(eval_cache_dir)
    rates, rmses, recalls, precisions = [], [], [], []
    with Pool(2) as pool:
        ref_s, ref_c, _ = compute_fingerprints(
            [CrystalArrays.from_pymatgen(s) for s in truth], cache, pool, label="r"
        )
        for sigma_pos, sigma_lattice in LEVELS:
            noisy = perturb(truth, sigma_pos, sigma_lattice, seed=11)
            valid = basic_table(records)["valid"]
            rms = compute_rms(
                [
                    (CrystalArrays.from_pymatgen(a), CrystalArrays.from_pymatgen(b))
                    for a, b in zip(noisy, truth, strict=True)
                ],
                pool,
            )
            rates.append(np.isfinite(rms).mean())
            rmses.append(np.nanmean(rms) if np.isfinite(rms).any() else np.inf)
            s, c, ok = compute_fingerprints(
                [CrystalArrays.from_pymatgen(x) for x in noisy], cache, pool, label="g"
            )
            cov = compute_coverage(
                s[ok],
                c[ok],
                ref_s,
                ref_c,
                n_generated=len(noisy),
                struct_cutoff=0.2,
                comp_cutoff=4.0,
            )
            recalls.append(cov.cov_recall)
            precisions.append(cov.cov_precision)
            assert valid.any()
    cache.close()
    for series in (rates, recalls, precisions):
        assert all(a >= b for a, b in itertools.pairwise(series)), series
        assert series[0] == 1.0 and series[-1] < series[0], series
    assert all(a <= b for a, b in itertools.pairwise(rmses)), rmses
