"""Oracle checks on real data: a split evaluated against itself is perfect; the cache serves the
reference on a second evaluation. Small subsets here; the full splits are marked slow."""

import numpy as np
import pytest

from autoperi_eval import EvalSettings, evaluate, perturb
from autoperi_eval._basic import basic_table


def oracle_settings(eval_cache_dir, data_dir, **changes) -> EvalSettings:
    base = EvalSettings(
        n_property_samples=None,
        property_valid_only=False,
        energy=False,
        novelty=False,
        cache_dir=eval_cache_dir,
        data_dir=data_dir,
        plots=False,
        n_workers=2,
    )
    return base.replace(**changes)


def check_dng_oracle(report) -> None:
    m = report.metrics
    assert m["coverage"]["cov_recall"] == 1.0
    assert m["coverage"]["cov_precision"] == 1.0
    assert m["properties"]["wdist_density"] == 0.0
    assert m["properties"]["wdist_num_elems"] == 0.0
    assert m["validity"]["struct_valid"] == 1.0


def check_csp_oracle(report, records) -> None:
    match = report.metrics["match"]
    assert match["k1_ungated"]["match_rate"] == 1.0
    assert match["k1_ungated"]["rmse"] == pytest.approx(0.0, abs=1e-6)
    # the DiffCSP gate keeps exactly the valid ground truths (independent count)
    valid = basic_table(records)["valid"]
    assert match["k1_gated"]["match_rate"] == pytest.approx(valid.mean())


@pytest.mark.parametrize("spec", ["perov_5:test[:120]", "mp_20:test[:40]"])
def test_split_against_itself(spec, load_split, eval_cache_dir, data_dir) -> None:
    records = load_split(spec)
    structures = [r.structure for r in records]
    settings = oracle_settings(eval_cache_dir, data_dir)
    check_dng_oracle(evaluate(structures, spec, "dng", out_dir=None, settings=settings))
    for s, r in zip(structures, records, strict=True):
        s.properties = {"gt_index": r.index}
    check_csp_oracle(evaluate(structures, spec, "csp", out_dir=None, settings=settings), records)


def test_second_evaluation_takes_reference_fingerprints_from_cache(load_split, tmp_path, data_dir):
    spec = "perov_5:test[150:175]"
    records = load_split(spec)
    settings = oracle_settings(tmp_path / "cache", data_dir)
    stats = []
    for seed in (1, 2):
        samples = perturb([r.structure for r in records], 0.05, 0.01, seed=seed)
        report = evaluate(samples, spec, "dng", out_dir=None, settings=settings)
        stats.append(report.cache)
    n = len(records)
    assert stats[0]["fingerprints reference"] == {"computed": n, "cached": 0}
    assert stats[1]["fingerprints reference"] == {"computed": 0, "cached": n}
    assert stats[1]["fingerprints samples"]["computed"] == n


@pytest.mark.slow
@pytest.mark.parametrize("spec", ["perov_5:test", "mp_20:test"])
def test_full_split_against_itself(spec, load_split, data_dir) -> None:
    """Full splits, with the default (persistent) cache; energies included for Perov-5."""
    records = load_split(spec)
    structures = [r.structure for r in records]
    energy = spec.startswith("perov_5")
    settings = EvalSettings(
        n_property_samples=None,
        property_valid_only=False,
        energy=energy,
        relax_samples=0,
        novelty=False,
        data_dir=data_dir,
        plots=False,
    )
    report = evaluate(structures, spec, "dng", out_dir=None, settings=settings)
    check_dng_oracle(report)
    if energy:
        assert report.metrics["properties"]["wdist_energy"] == 0.0
        assert report.metrics["properties"]["frechet_chgnet"] == pytest.approx(0.0, abs=1e-6)
    for s, r in zip(structures, records, strict=True):
        s.properties = {"gt_index": r.index}
    check_csp_oracle(evaluate(structures, spec, "csp", out_dir=None, settings=settings), records)
    assert np.isfinite(report.wall_time_s)
