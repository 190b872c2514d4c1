"""Evaluation settings: the protocol's fixed numbers and the knobs of one run."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

Task = Literal["dng", "csp"]
FORMATION_TOLERANCE = 0.1  # eV/atom: a sample meets a formation-energy target within this


@dataclass(frozen=True)
class EvalSettings:
    """Settings of one evaluation; the defaults are the protocol of SCIENCE.md section 5.

    k: CSP candidates per ground truth considered (k = 1 is always reported too).
    energy: compute CHGNet metrics (d_E, stability, S.U.N., Frechet distance).
    n_property_samples / property_valid_only: the subset for the property distances, stability,
        uniqueness and novelty: 1,000 random valid samples (None: all candidates).
    seed: seed of that random draw.
    relax_samples / relax_steps / relax_fmax: the relaxed-stability subset (the first
        `relax_samples` of the property subset) and the bounded optimiser.
    struct_cutoff / comp_cutoff: COV cutoffs (None: the dataset's CDVAE values).
    stable_thresholds: E_hull thresholds (eV/atom) for "stable" in S.U.N.
    hull_splits: splits of the dataset forming the convex hull and the novelty reference.
    hull_file: a hull reference file (`HullReference`, e.g. `autoperi data hull`) whose energies
        form the hull instead of scoring `hull_splits` in this run; its protocol must match.
    n_workers / chgnet_workers: processes for the CPU work (None: all cores) and for CHGNet
        (None: up to 2, each holds about 2 GB).
    cache_dir / use_cache: the on-disk cache (None: $AUTOPERI_CACHE_DIR or ~/.cache/autoperi).
    data_dir: the datasets directory (None: $AUTOPERI_DATA_DIR).
    residual_of: the JSON of another CSP report on the same split (e.g. the lookup baseline's);
        the match rate is also reported on the references its k = 1 candidate did not match
        (its residual subset).
    formation_target: a formation energy per atom (eV/atom) the samples were asked for; the
        share of all samples whose relaxed formation energy lies within
        `FORMATION_TOLERANCE` of it is reported (None: not reported).
    """

    k: int = 20
    energy: bool = True
    n_property_samples: int | None = 1000
    property_valid_only: bool = True
    seed: int = 0
    relax_samples: int = 100
    relax_steps: int = 100
    relax_fmax: float = 0.1
    novelty: bool = True
    symmetry: bool = True
    symprec: float = 0.1
    struct_cutoff: float | None = None
    comp_cutoff: float | None = None
    stable_thresholds: tuple[float, ...] = (0.08, 0.0)
    hull_splits: tuple[str, ...] = ("train", "val")
    hull_file: Path | None = None
    n_workers: int | None = None
    chgnet_workers: int | None = None
    chgnet_batch_size: int = 32
    cache_dir: Path | None = None
    use_cache: bool = True
    plots: bool = True
    data_dir: Path | None = None
    residual_of: Path | None = None
    formation_target: float | None = None

    def replace(self, **changes: Any) -> EvalSettings:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly view (paths as strings)."""
        out = dataclasses.asdict(self)
        for name in ("cache_dir", "data_dir", "residual_of", "hull_file"):
            out[name] = None if out[name] is None else str(out[name])
        out["stable_thresholds"] = list(self.stable_thresholds)
        out["hull_splits"] = list(self.hull_splits)
        return out
