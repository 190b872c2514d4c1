"""CSP metrics beyond the classic match rate: polymorph-aware METRe and cRMSE (SCIENCE 5.5,
arXiv 2509.12178) and the match rate on another system's residual subset.

A composition can have several reference crystals (polymorphs); the classic match rate only
compares a sample with the reference it was drawn for. METRe is the share of references
recovered by any valid sample of the same reduced formula; cRMSE the mean over all references
of the best such RMS, with unrecovered references counted at the matcher's stol.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

STOL = 0.5  # StructureMatcher(stol=0.5) of the protocol


def cross_pairs(
    sample_formula: np.ndarray, ref_formula: np.ndarray, candidates: np.ndarray, gt_of: np.ndarray
) -> list[tuple[int, int]]:
    """(sample, reference) pairs of equal reduced formula for the samples where `candidates`
    (n_samples,) is true, other than each sample's own ground truth `gt_of` (n_samples,)."""
    by_formula: dict[str, list[int]] = defaultdict(list)
    for j, formula in enumerate(ref_formula):
        by_formula[formula].append(j)
    return [
        (int(i), j)
        for i in np.flatnonzero(candidates)
        for j in by_formula.get(sample_formula[i], ())
        if j != gt_of[i]
    ]


def polymorph_metrics(best: np.ndarray) -> dict[str, float]:
    """METRe and cRMSE from each reference's best RMS (n_ref,) (NaN: not recovered)."""
    recovered = np.isfinite(best)
    return {
        "metre": float(recovered.mean()) if len(best) else float("nan"),
        "crmse": float(np.where(recovered, best, STOL).mean()) if len(best) else float("nan"),
        "n_recovered": int(recovered.sum()),
    }


def residual_references(path: Path, ref_rows: Sequence[int], reference: str) -> np.ndarray:
    """(n_ref,) bool: the references (rows `ref_rows` of the split `reference`) that the k = 1
    candidates of the CSP report `path` (its JSON) did not match, ungated."""
    from ._io import EvalInputError

    try:
        report = json.loads(Path(path).read_text())
        matched = set(report["metrics"]["match_rows"]["k1_ungated"])
        theirs = str(report["reference"]).split("[")[0]
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise EvalInputError(f"--residual-of {path}: not a CSP report JSON ({exc})") from None
    if theirs != reference.split("[")[0]:
        raise EvalInputError(f"--residual-of {path}: a report on {theirs}, not on {reference}")
    return np.array([row not in matched for row in ref_rows], dtype=bool)


def residual_metrics(residual: np.ndarray, first_rms: np.ndarray, gated_rms: np.ndarray) -> dict:
    """Match rates on the residual references: `first_rms` / `gated_rms` (n_ref,) the RMS of each
    reference's k = 1 candidate, ungated / gated (NaN: no match)."""
    n = int(residual.sum())
    ungated = np.isfinite(first_rms[residual])
    gated = np.isfinite(gated_rms[residual])
    return {
        "n_reference": n,
        "k1_ungated": float(ungated.mean()) if n else float("nan"),
        "k1_gated": float(gated.mean()) if n else float("nan"),
        "n_matched_ungated": int(ungated.sum()),
    }
