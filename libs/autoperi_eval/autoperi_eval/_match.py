"""CSP match rate and RMSE (SCIENCE 5.4), DiffCSP's protocol.

Protocol source: jiaor17/DiffCSP `scripts/compute_metrics.py` (`RecEval`, `RecEvalBatch`),
reimplemented. `StructureMatcher(stol=0.5, angle_tol=10, ltol=0.3).get_rms_dist(pred, gt)`; its
first value (RMS displacement normalised by (V / n)^(1/3)) is the RMSE contribution; a matcher
exception counts as no match.
- k = 1, gated (DiffCSP): counted only if the prediction AND the ground truth are valid
  (structural and SMACT validity; the two share a composition).
- k = 1, CDVAE (`RecEval` of txie-93/cdvae): only the prediction must be valid.
- k = 1, ungated: no validity condition.
- k = n (DiffCSP `RecEvalBatch`): for each ground truth, the smallest RMS over its valid
  candidates (validity of the ground truth not required); ungated: over all candidates.
Match rate = matched / all ground truths in the reference; RMSE = mean RMS over matched.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from autoperi_data import CrystalArrays

from ._parallel import Pool, ProgressFn

CSP_MATCHER = {"stol": 0.5, "angle_tol": 10.0, "ltol": 0.3}


def rms_pair(pair: tuple[CrystalArrays, CrystalArrays]) -> float:
    """Worker: normalised RMS distance of (prediction, ground truth), NaN when not matched."""
    import warnings

    from pymatgen.analysis.structure_matcher import StructureMatcher

    matcher = StructureMatcher(**CSP_MATCHER)
    predicted, truth = pair[0].to_pymatgen(), pair[1].to_pymatgen()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            result = matcher.get_rms_dist(predicted, truth)
        except Exception:
            return float("nan")
    return float("nan") if result is None else float(result[0])


def compute_rms(
    pairs: Sequence[tuple[CrystalArrays, CrystalArrays]],
    pool: Pool,
    progress: ProgressFn | None = None,
) -> np.ndarray:
    """(n_pairs,) normalised RMS per (prediction, ground truth) pair, NaN if unmatched."""
    values = pool.map(rms_pair, pairs, chunk_size=16, stage="match", progress=progress)
    return np.asarray(values, dtype=float)


def _rate(rms: np.ndarray, n_gt: int) -> dict[str, float]:
    matched = np.isfinite(rms)
    rmse = float(rms[matched].mean()) if matched.any() else float("nan")
    return {
        "match_rate": float(matched.sum() / n_gt),
        "rmse": rmse,
        "n_matched": int(matched.sum()),
    }


def match_metrics(
    gt_of: np.ndarray,
    rank: np.ndarray,
    rms: np.ndarray,
    pred_valid: np.ndarray,
    gt_valid: np.ndarray,
    n_gt: int,
) -> dict[str, dict[str, float]]:
    """All match-rate variants from per-candidate results.

    gt_of (n_cand,) reference position of each candidate; rank (n_cand,) its order among the
    candidates of that ground truth (0 = the k = 1 candidate); rms (n_cand,) NaN if unmatched;
    pred_valid (n_cand,) bool; gt_valid (n_gt,) bool.
    """
    first = rank == 0
    gated = np.where(pred_valid & gt_valid[gt_of], rms, np.nan)
    cdvae = np.where(pred_valid, rms, np.nan)
    out = {
        "k1_gated": _rate(gated[first], n_gt),
        "k1_cdvae": _rate(cdvae[first], n_gt),
        "k1_ungated": _rate(rms[first], n_gt),
    }
    k = int(rank.max()) + 1 if len(rank) else 0
    if k > 1:
        out[f"k{k}"] = _rate(best_per_gt(gt_of, cdvae, n_gt), n_gt)
        out[f"k{k}_ungated"] = _rate(best_per_gt(gt_of, rms, n_gt), n_gt)
    return out


def best_per_gt(gt_of: np.ndarray, rms: np.ndarray, n_gt: int) -> np.ndarray:
    """(n_gt,) smallest finite RMS among each ground truth's candidates, NaN if none."""
    best = np.full(n_gt, np.inf)
    finite = np.isfinite(rms)
    np.minimum.at(best, gt_of[finite], rms[finite])
    best[np.isinf(best)] = np.nan
    return best
