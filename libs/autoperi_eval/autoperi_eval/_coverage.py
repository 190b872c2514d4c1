"""Coverage recall and precision (COV-R, COV-P), CDVAE's definition (SCIENCE 5.2).

Protocol source: txie-93/cdvae `scripts/eval_utils.py::compute_cov`, reimplemented with
block-wise distances so that 10,000 x 10,000 comparisons fit in little memory.
- Generated crystals enter with whatever validity they have; only those whose fingerprint could
  not be computed are dropped (CDVAE's `filter_fps`), and COV-P still divides by ALL generated.
- COV-R: share of reference crystals whose nearest generated structure fingerprint is within the
  structure cutoff AND whose nearest generated composition fingerprint is within the composition
  cutoff; the two nearest neighbours may be different crystals.
- COV-P: number of generated crystals with a reference crystal within both cutoffs (again possibly
  different ones), divided by all generated crystals.
Distances are Euclidean; comparisons are `<=`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.distance import cdist

#: (structure cutoff, composition cutoff) per dataset, CDVAE's `COV_Cutoffs`.
COV_CUTOFFS: dict[str, tuple[float, float]] = {
    "mp_20": (0.4, 10.0),
    "perov_5": (0.2, 4.0),
    "carbon_24": (0.2, 4.0),
}


@dataclass(frozen=True)
class Coverage:
    """COV metrics and the nearest-neighbour distances behind them.

    `precision_struct` / `precision_comp`: (n_kept,) per kept generated crystal;
    `recall_struct` / `recall_comp`: (n_reference,) per reference crystal.
    """

    cov_recall: float
    cov_precision: float
    amsd_recall: float
    amsd_precision: float
    amcd_recall: float
    amcd_precision: float
    precision_struct: np.ndarray
    precision_comp: np.ndarray
    recall_struct: np.ndarray
    recall_comp: np.ndarray

    def summary(self) -> dict[str, float]:
        """The scalar metrics, CDVAE's names."""
        names = ("cov_recall", "cov_precision", "amsd_recall", "amsd_precision")
        names += ("amcd_recall", "amcd_precision")
        return {name: float(getattr(self, name)) for name in names}


def _nearest(a: np.ndarray, b: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
    """(min over b for each row of a (n_a,), min over a for each row of b (n_b,))."""
    row_min = np.full(len(a), np.inf)
    col_min = np.full(len(b), np.inf)
    for start in range(0, len(a), block):
        d = cdist(a[start : start + block], b)  # (block, n_b)
        row_min[start : start + block] = d.min(axis=1)
        col_min = np.minimum(col_min, d.min(axis=0))
    return row_min, col_min


def compute_coverage(
    gen_struct: np.ndarray,
    gen_comp: np.ndarray,
    ref_struct: np.ndarray,
    ref_comp: np.ndarray,
    *,
    n_generated: int,
    struct_cutoff: float,
    comp_cutoff: float,
    block: int = 1024,
) -> Coverage:
    """COV-R / COV-P from fingerprints of the kept generated crystals and of the reference.

    gen_struct (n_kept, 61), gen_comp (n_kept, 132), ref_struct (n_ref, 61), ref_comp (n_ref, 132)
    (standardised composition features); `n_generated` counts all generated crystals, including
    those dropped for a failed fingerprint.
    """
    if len(ref_struct) == 0 or n_generated == 0:
        raise ValueError("coverage needs at least one generated and one reference crystal")
    if len(gen_struct) == 0:
        empty = np.zeros(0)
        inf = np.full(len(ref_struct), np.inf)
        return Coverage(0.0, 0.0, np.inf, np.nan, np.inf, np.nan, empty, empty, inf, inf)
    p_struct, r_struct = _nearest(gen_struct, ref_struct, block)
    p_comp, r_comp = _nearest(gen_comp, ref_comp, block)
    recall = np.logical_and(r_struct <= struct_cutoff, r_comp <= comp_cutoff)
    precision = np.logical_and(p_struct <= struct_cutoff, p_comp <= comp_cutoff)
    return Coverage(
        cov_recall=float(recall.mean()),
        cov_precision=float(precision.sum() / n_generated),
        amsd_recall=float(r_struct.mean()),
        amsd_precision=float(p_struct.mean()),
        amcd_recall=float(r_comp.mean()),
        amcd_precision=float(p_comp.mean()),
        precision_struct=p_struct,
        precision_comp=p_comp,
        recall_struct=r_struct,
        recall_comp=r_comp,
    )
