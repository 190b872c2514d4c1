"""De novo report fields: S.U.N. shares of the scored and of all samples, the share meeting a
formation-energy target, sample naming."""

import numpy as np
import pytest
from pymatgen.core import Composition

from autoperi_eval._dng import formation_target_share, sun_shares
from autoperi_eval._stability import Stability, formation_of


def test_all_valid_scored_counts_invalid_samples_as_failures() -> None:
    sun = np.array([True, True, False, True, False, False, False, False])
    scored = np.array([True] * 6 + [False] * 2)  # two valid samples CHGNet could not score
    of_scored, of_all = sun_shares(sun, scored, n_valid=8, n_samples=10)
    assert of_scored == pytest.approx(3 / 6)
    assert of_all == pytest.approx(3 / 10)


def test_subset_rate_is_extrapolated_to_all_valid_samples() -> None:
    rng = np.random.default_rng(0)
    sun_all_valid = rng.random(900) < 0.4
    subset = rng.choice(900, size=300, replace=False)
    _, of_all = sun_shares(sun_all_valid[subset], np.ones(300, bool), 900, 1000)
    assert of_all == pytest.approx(sun_all_valid[subset].mean() * 0.9)
    assert abs(of_all - sun_all_valid.sum() / 1000) < 0.06  # the subset estimates the full count


def test_nothing_scored_gives_zero_not_a_division_error() -> None:
    assert sun_shares(np.zeros(0, bool), np.zeros(0, bool), 0, 5) == (0.0, 0.0)


def test_formation_target_share_counts_unrelaxed_and_undefined_samples_as_misses() -> None:
    nan = float("nan")
    formation = np.array([-1.05, -0.85, -1.2, nan, -1.0, nan])
    steps = np.array([10, 20, 30, 40, 50, -1])  # the last was not relaxed
    zeros = np.zeros(6)
    stab = Stability(zeros, zeros, steps, zeros, formation, 0, 0)
    share = formation_target_share(stab, -1.0, n_valid=6, n_samples=8)
    assert share["formation_target"] == -1.0
    # within 0.1 of -1.0: -1.05 and -1.0 (-0.85 and -1.2 are not) of 5 relaxed, 6 of 8 valid
    assert share["formation_within_0.1_of_target_of_all"] == pytest.approx(2 / 5 * 6 / 8)


def test_formation_energies_take_reference_elements_first_then_the_files_elemental_ones():
    """TiO2 at -8.7 eV/atom: O from the reference's O2 entry, Ti from the elemental references
    (the reference has no Ti phase); NaCl has neither and gets NaN."""
    reference = [Composition("O2"), Composition("TiO2")]
    targets = [Composition("TiO2"), Composition("NaCl")]
    got = formation_of(reference, np.array([-4.9, -8.8]), targets, np.array([-8.7, -3.0]),
                       {"Ti": -7.8, "O": 0.0})  # fmt: skip
    assert got[0] == pytest.approx(-8.7 - (-7.8 + 2 * -4.9) / 3)
    assert np.isnan(got[1])


def test_reports_name_samples_without_host_paths(tmp_path, monkeypatch) -> None:
    from autoperi_eval._evaluate import source_name

    inside, outside = tmp_path / "work", tmp_path / "elsewhere"
    (inside / "runs").mkdir(parents=True)
    outside.mkdir()
    (inside / "runs" / "samples.json").write_text("{}")
    (outside / "samples.json").write_text("{}")
    monkeypatch.chdir(inside)
    assert source_name(inside / "runs" / "samples.json") == "runs/samples.json"
    assert source_name(str(outside / "samples.json")) == "samples.json"
    assert source_name("mp_20:test") == "mp_20:test"
    assert source_name([1, 2]) == "<2 in memory>"
