"""METRe / cRMSE and the residual subset on two real polymorphs of CdI2 (mp_20 test rows 3787
and 3788), against StructureMatcher run directly."""

import numpy as np
import pytest
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from autoperi_eval import EvalSettings, evaluate, write_samples_json

REFERENCE = "mp_20:test[3787:3789]"


@pytest.fixture(scope="module")
def polymorphs(load_split):
    records = load_split(REFERENCE)
    assert records[0].structure.composition.reduced_formula == "CdI2"
    assert records[1].structure.composition.reduced_formula == "CdI2"
    return records


def _csp(samples, rows, tmp_path, eval_cache_dir, residual_of=None):
    path = write_samples_json(
        samples, tmp_path / "s.json", properties=[{"gt_index": r} for r in rows]
    )
    settings = EvalSettings(
        k=1, energy=False, novelty=False, n_workers=1, cache_dir=eval_cache_dir,
        plots=False, residual_of=residual_of,
    )  # fmt: skip
    return evaluate(str(path), REFERENCE, "csp", "p", settings=settings, out_dir=tmp_path)


def test_swapped_polymorphs_miss_the_match_rate_but_recover_every_reference(
    polymorphs, tmp_path, eval_cache_dir
):
    a, b = polymorphs
    matcher = StructureMatcher(stol=0.5, angle_tol=10, ltol=0.3)
    assert matcher.get_rms_dist(a.structure, b.structure) is None  # really two structures
    report = _csp([b.structure, a.structure], [a.index, b.index], tmp_path, eval_cache_dir)
    assert report.metrics["match"]["k1_ungated"]["match_rate"] == 0.0
    assert report.metrics["polymorph"]["metre"] == 1.0
    assert report.metrics["polymorph"]["crmse"] == pytest.approx(0.0, abs=1e-6)


def test_an_unrecovered_reference_counts_at_stol(polymorphs, tmp_path, eval_cache_dir):
    a, b = polymorphs
    report = _csp([a.structure, a.structure], [a.index, b.index], tmp_path, eval_cache_dir)
    assert report.metrics["polymorph"]["metre"] == 0.5
    assert report.metrics["polymorph"]["crmse"] == pytest.approx(0.25, abs=1e-6)
    assert report.columns["valid"].all()
    number = [SpacegroupAnalyzer(r.structure, symprec=0.1).get_space_group_number() for r in (a, b)]
    expected = np.mean([number[0] == n for n in number])  # sample a against references a, b
    assert report.metrics["beyond"]["same_space_group_k1"] == expected


def test_residual_subset_is_what_the_other_report_missed(polymorphs, tmp_path, eval_cache_dir):
    a, b = polymorphs
    first = tmp_path / "first"
    first.mkdir()
    _csp([a.structure, a.structure], [a.index, b.index], first, eval_cache_dir)  # misses b
    report = _csp(
        [a.structure, b.structure], [a.index, b.index], tmp_path, eval_cache_dir, first / "p.json"
    )
    residual = report.metrics["residual"]
    assert residual["n_reference"] == 1 and residual["k1_ungated"] == 1.0
    assert np.isfinite(report.metrics["match"]["k1_ungated"]["rmse"])
    assert report.metrics["match_rows"]["k1_ungated"] == [a.index, b.index]
