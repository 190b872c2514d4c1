"""The S.U.N. yield's arithmetic: the paired percentile bootstrap against scipy's, the merge
rule's cases, the yield objective over two checkpoints' records, and S.U.N. indicators of real
Perov-5 crystals made into hand-made cases (a duplicate, a training crystal, an unstable one, one
off the hull, one that failed, one on the stability threshold), and the fresh draws, the same for
every evaluation of a checkpoint (what pairs two checkpoints' samples)."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from loop_svc import Evaluation, YieldComparison, bootstrap_interval, merge_decision, yield_of
from loop_svc._objectives import YieldObjective
from loop_svc._yield import bits, from_bits, sun_indicators


def _pairs(n: int, p: float, up: float, down: float, seed: int):
    """(before, after): (n,) S.U.N. indicators, after = before with each sample turned S.U.N.
    with probability `up` and turned not S.U.N. with probability `down` (strongly paired)."""
    rng = np.random.default_rng(seed)
    before = rng.random(n) < p
    after = np.where(rng.random(n) < up, True, before) & ~(rng.random(n) < down)
    return before, after


def _scipy(before, after, resamples: int, confidence: float, seed: int):
    def difference(b, a, axis):
        return 1000 * (a.mean(axis=axis) - b.mean(axis=axis))

    result = stats.bootstrap(
        (before.astype(float), after.astype(float)), difference, paired=True, vectorized=True,
        method="percentile", n_resamples=resamples, confidence_level=confidence,
        rng=np.random.default_rng(seed),
    )  # fmt: skip
    return result.confidence_interval.low, result.confidence_interval.high


CASES = [(400, 0.3, 0.1, 0.02, 0.95), (1000, 0.05, 0.03, 0.01, 0.95), (60, 0.5, 0.2, 0.0, 0.9)]


@pytest.mark.parametrize(("n", "p", "up", "down", "confidence"), CASES)
def test_the_interval_agrees_with_scipys_paired_percentile_bootstrap(n, p, up, down, confidence):
    before, after = _pairs(n, p, up, down, seed=n)
    low, high = bootstrap_interval(before, after, 2000, confidence, seed=7)
    ref_low, ref_high = _scipy(before, after, 2000, confidence, seed=11)
    # Resampling noise: two 2000-resample estimates of a tail percentile differ by ~0.09
    # standard errors of the mean difference, plus one step of its lattice (1000 / n) at most;
    # an unpaired bootstrap would be ~2x wider here.
    se = 1000 * np.std(after.astype(float) - before) / np.sqrt(n)
    tolerance = 0.35 * se + 1000 / n
    assert abs(low - ref_low) < tolerance and abs(high - ref_high) < tolerance
    # With the same seed, the resampled indices are the very ones scipy draws.
    same = _scipy(before, after, 2000, confidence, seed=7)
    assert bootstrap_interval(before, after, 2000, confidence, seed=7) == pytest.approx(same)


def test_the_interval_is_zero_for_equal_draws_and_widens_with_confidence():
    before, after = _pairs(300, 0.3, 0.1, 0.02, seed=3)
    assert bootstrap_interval(before, before, 500, 0.95, seed=0) == (0.0, 0.0)
    narrow, wide = (bootstrap_interval(before, after, 2000, c, 0) for c in (0.8, 0.99))
    assert wide[0] < narrow[0] and narrow[1] < wide[1]
    with pytest.raises(ValueError, match="same N"):
        bootstrap_interval(before, after[:-1], 100, 0.95, 0)


OK = YieldComparison(before=10.0, after=30.0, low=5.0, high=35.0, confidence=0.95,
                     csp_before=0.50, csp_after=0.495)  # fmt: skip


def test_a_gain_above_zero_with_the_guard_holding_merges():
    merged, text = merge_decision(OK, max_csp_drop=0.01)
    assert merged and text.startswith("merged: S.U.N. yield 10.0 -> 30.0")
    assert "95% CI [+5.0, +35.0]" in text and "CSP guard holds" in text
    assert merge_decision(replace(OK, csp_after=0.49), 0.01)[0]  # a drop of exactly 0.01


def test_an_interval_that_reaches_zero_does_not_merge():
    for low in (-3.0, 0.0, float("nan")):
        merged, text = merge_decision(replace(OK, low=low), 0.01)
        assert not merged and "does not lie above 0" in text


def test_a_violated_csp_guard_does_not_merge():
    merged, text = merge_decision(replace(OK, csp_after=0.47), 0.01)
    assert not merged and "CSP guard violated" in text and "drop +0.0300" in text


def test_the_guard_is_not_applicable_to_de_novo_checkpoints():
    de_novo = replace(OK, csp_before=None, csp_after=None)
    merged, text = merge_decision(de_novo, 0.0)
    assert merged and "CSP guard N/A (de novo-only checkpoint)" in text
    merged, text = merge_decision(replace(de_novo, low=-1.0), 0.0)
    assert not merged and "N/A" in text


def _record(sun: np.ndarray) -> dict:
    return {"sun": bits(sun), "yield": yield_of(sun), "num_sun": int(sun.sum())}


def test_the_yield_objective_pairs_the_draws_and_decides():
    before, after = _pairs(500, 0.1, 0.15, 0.0, seed=5)
    records = {"old": _record(before), "new": _record(after)}
    metrics = {"old": {}, "new": {}}  # a de novo checkpoint serves no CSP
    evaluation = Evaluation("held", objective="sun_yield", bootstrap_resamples=1000)
    objective = YieldObjective(evaluation, metrics.__getitem__, records.__getitem__, seed=0)
    fields = objective.evaluate("old", "new")
    assert fields["yield_before"] == 1000 * before.mean()
    assert fields["yield_after"] == 1000 * after.mean() and fields["num_sun"] == after.sum()
    low, high = bootstrap_interval(before, after, 1000, 0.95, seed=0)
    assert (fields["yield_diff_low"], fields["yield_diff_high"]) == (low, high) and low > 0
    assert fields["metric_before"] is None and fields["num_sun_before"] == before.sum()
    merged, text = objective.decide(fields)
    assert merged and "N/A" in text


def _moved(crystal, shift: float):
    """The same crystal with its atoms in reverse order and translated by `shift`."""
    order = np.arange(crystal.num_atoms)[::-1]
    frac = (crystal.frac_coords[order] + shift) % 1.0
    return crystal.replace(frac_coords=frac, atomic_numbers=crystal.atomic_numbers[order])


def test_sun_counts_stable_unique_novel_samples(data_dir):
    from trainer_svc.testing import perov_subset

    a, b, c, d, e, other = perov_subset(data_dir, 6)
    samples = [a, _moved(a, 0.13), b, c, d, None, e]
    e_hull = [0.0, 0.01, -0.05, 0.2, None, 0.0, 0.08]
    flags = sun_indicators(samples, e_hull, reference=[other, b], stable_e_above_hull=0.08)
    expected = {
        "stable": [1, 1, 1, 0, 0, 0, 1],  # 0.2 above, no hull value, failed; 0.08 is stable
        "unique": [1, 0, 1, 1, 1, 0, 1],  # the moved copy of the first sample is a duplicate
        "novel": [1, 1, 0, 1, 1, 0, 1],  # b is in the reference (a training crystal)
        "sun": [1, 0, 0, 0, 0, 0, 1],
    }
    for name, values in expected.items():
        assert flags[name].tolist() == [bool(v) for v in values], name
    assert yield_of(flags["sun"]) == pytest.approx(1000 * 2 / 7)
    assert from_bits(bits(flags["unique"])).tolist() == flags["unique"].tolist()


@pytest.mark.parametrize("kind", ["de_novo", "csp"])
def test_a_checkpoint_draws_the_same_samples_every_time(kind):
    from autoperi_model import Generator

    from loop_svc import ChemicalSpace, LoopSpec
    from loop_svc._yield_eval import draw

    checkpoints = Path(__file__).resolve().parents[3] / "checkpoints"
    evaluation = Evaluation("held", objective="sun_yield", yield_samples=5, steps=4)
    if kind == "de_novo":
        space, targets, path = ChemicalSpace(("Ba", "Bi", "N"), ("Ba",), 5, 5), (), "perov_5_dng"
    else:
        space, targets, path = None, ("SrTiO3", "BaZrN2O"), "perov_5_csp"
    spec = LoopSpec("y", "d", "ck", targets, evaluation, chemical_space=space)
    generator = Generator.from_checkpoint(checkpoints / path)
    first, again = draw(generator, spec), draw(generator, spec)
    assert [c.content_hash() for c in first] == [c.content_hash() for c in again]  # paired
    assert len(first) == 5 and len({c.content_hash() for c in first}) == 5
    if kind == "de_novo":
        assert all({"Ba"} <= set(c.symbols) <= {"Ba", "Bi", "N"} for c in first)
    else:
        assert [c.formula for c in first] == ["SrTiO3", "BaZrN2O"] * 2 + ["SrTiO3"]


def test_the_loop_relaxes_as_the_hull_reference_was_relaxed() -> None:
    """E_hull compares a sample with the hull's entries: both relaxed the same bounded way."""
    from autoperi_eval import RelaxSettings

    from loop_svc import GrpcScorer

    scorer, protocol = GrpcScorer("127.0.0.1:1"), RelaxSettings()
    assert (scorer.relax_steps, scorer.fmax) == (protocol.steps, protocol.fmax)
