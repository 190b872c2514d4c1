"""The S.U.N. yield objective's arithmetic: per-sample indicators, the yield, a paired percentile
bootstrap interval of the yield difference, and the merge rule (SCIENCE 5.5).

Indicators of the N fresh samples of one checkpoint, each (N,) bool:
- stable: relaxed energy above the scorer's hull <= the threshold (0.08 eV/atom by default); an
  undefined E_hull (the hull does not span the composition) or a failed score is not stable;
- unique: no earlier sample of the same draw matches it (`autoperi_eval` uniqueness);
- novel: no crystal of the loop's seed dataset commit matches it (`autoperi_eval` novelty);
matching is pymatgen's `StructureMatcher()` with its defaults, on the relaxed structures.
S.U.N. = stable & unique & novel. Yield = 1000 x mean(S.U.N.) over all N samples drawn
(MatterGen's denominator: a sample that could not be scored counts as not S.U.N.).

Pairing: every checkpoint of a loop draws its samples with the same seed and sample i's own seed
is `sample_seed(seed, i)`, so sample i of the checkpoint before and after fine-tuning start from
the same noise. The bootstrap therefore resamples sample indices and applies the same indices to
both vectors (`scipy.stats.bootstrap(..., paired=True, method="percentile")`): it keeps the
positive correlation of the pairs, so the interval is no wider than with independent resampling,
and it needs both vectors to have the same N (they do: N is the loop's `yield_samples`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from autoperi_data import CrystalArrays
from xtal import Crystal

PER = 1000.0  # yields are S.U.N. crystals per this many samples
FLAGS = ("stable", "unique", "novel")


def sun_indicators(
    structures: Sequence[Crystal | None],
    e_above_hull: Sequence[float | None],
    reference: Sequence[Crystal],
    stable_e_above_hull: float,
) -> dict[str, np.ndarray]:
    """{"stable", "unique", "novel", "sun"}: (N,) bool each, for N samples.

    `structures[i]`: sample i as scored (relaxed), None when it could not be scored (then all
    four are False and it takes no part in the uniqueness comparisons); `e_above_hull[i]` in
    eV/atom, None where undefined; `reference`: the crystals novelty is measured against.
    """
    from autoperi_eval import Pool, novelty, uniqueness

    n = len(structures)
    if len(e_above_hull) != n:
        raise ValueError(f"{len(e_above_hull)} E_hull values for {n} samples")
    scored = np.array([s is not None for s in structures], dtype=bool)
    e_hull = np.array([np.nan if e is None else e for e in e_above_hull], dtype=float)
    stable = scored & (np.nan_to_num(e_hull, nan=np.inf) <= stable_e_above_hull)
    unique, novel = np.zeros(n, bool), np.zeros(n, bool)
    payloads = [CrystalArrays.of(s) for s in structures if s is not None]
    if payloads:
        with Pool(inline_below=64) as pool:
            unique[scored] = uniqueness(payloads, pool)
            novel[scored] = novelty(payloads, [CrystalArrays.of(c) for c in reference], pool)
    return {"stable": stable, "unique": unique, "novel": novel, "sun": stable & unique & novel}


def yield_of(sun: np.ndarray) -> float:
    """S.U.N. crystals per 1,000 samples: 1000 x mean of the (N,) indicator (N >= 1)."""
    sun = np.asarray(sun, dtype=float)
    if sun.ndim != 1 or len(sun) == 0:
        raise ValueError("the yield needs a non-empty (N,) indicator vector")
    return PER * float(sun.mean())


def bootstrap_interval(
    before: np.ndarray, after: np.ndarray, resamples: int, confidence: float, seed: int
) -> tuple[float, float]:
    """Percentile-bootstrap interval of yield(after) - yield(before) at `confidence`.

    before, after: (N,) S.U.N. indicators, paired by sample index (see the module notes).
    `resamples` draws of N indices with replacement (numpy Generator seeded by `seed`), the same
    indices for both vectors; the interval is the (1 - confidence) / 2 and (1 + confidence) / 2
    percentiles (linear interpolation) of the resampled differences, as scipy's `bootstrap` with
    method="percentile" and paired=True computes them.
    """
    if np.ndim(before) != 1 or np.shape(before) != np.shape(after) or len(before) == 0:
        raise ValueError("before and after must be (N,) indicators of the same N >= 1")
    diff = PER * (np.asarray(after, dtype=float) - np.asarray(before, dtype=float))  # (N,)
    rng = np.random.default_rng(seed)
    stats = np.empty(resamples)
    for start in range(0, resamples, 256):  # (256, N) indices at a time
        stop = min(start + 256, resamples)
        stats[start:stop] = diff[rng.integers(0, len(diff), (stop - start, len(diff)))].mean(1)
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(stats, [tail, 100 - tail])
    return float(low), float(high)


@dataclass(frozen=True)
class YieldComparison:
    """The yields of the checkpoint before and after fine-tuning, the bootstrap interval of
    their difference at `confidence`, and the held-out CSP match rates (None: the checkpoints
    do not serve CSP)."""

    before: float
    after: float
    low: float
    high: float
    confidence: float
    csp_before: float | None = None
    csp_after: float | None = None


def merge_decision(comparison: YieldComparison, max_csp_drop: float) -> tuple[bool, str]:
    """(merge?, the decision's text): merge only when the interval's lower bound is above 0
    and the CSP guard holds (match rate drops by at most `max_csp_drop`); the guard is N/A
    (and holds) for de novo-only checkpoints."""
    c = comparison
    change = (
        f"S.U.N. yield {c.before:.1f} -> {c.after:.1f} per 1000 (difference "
        f"{c.confidence:.0%} CI [{c.low:+.1f}, {c.high:+.1f}])"
    )
    guard_ok, guard = _csp_guard(c.csp_before, c.csp_after, max_csp_drop)
    if not c.low > 0:  # NaN never merges
        return False, f"not merged: {change}: the interval does not lie above 0; {guard}"
    if not guard_ok:
        return False, f"not merged: {change}; {guard}"
    return True, f"merged: {change}; {guard}"


def _csp_guard(before: float | None, after: float | None, max_drop: float) -> tuple[bool, str]:
    """(holds?, text) of the CSP guard."""
    if before is None or after is None:
        return True, "CSP guard N/A (de novo-only checkpoint)"
    drop = before - after
    holds = drop <= max_drop + 1e-12  # NaN fails
    verdict = "holds" if holds else "violated"
    return holds, (
        f"CSP guard {verdict}: match rate {before:.4f} -> {after:.4f} (drop {drop:+.4f}, "
        f"at most {max_drop:g})"
    )


def bits(flags: np.ndarray) -> str:
    """A (N,) bool vector as a string of '0' and '1' (compact in the journal)."""
    return "".join("1" if f else "0" for f in np.asarray(flags, dtype=bool))


def from_bits(text: str) -> np.ndarray:
    """The (N,) bool vector of `bits`."""
    return np.frombuffer(text.encode(), dtype=np.uint8) == ord("1")
