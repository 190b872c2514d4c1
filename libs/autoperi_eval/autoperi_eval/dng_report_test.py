"""De novo report fields: S.U.N. shares of the scored and of all samples, sample naming."""

import numpy as np
import pytest

from autoperi_eval._dng import sun_shares


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
