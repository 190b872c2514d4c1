"""Candidate selection: each filter in order, ranking by stability, real-fingerprint diversity."""

import numpy as np
import pytest
from autoperi_data import CrystalArrays
from autoperi_eval import fingerprint_arrays

from loop_svc import CandidateScore, SelectionCriteria, select_candidates


def score(h, e_hull=0.0, energy=-5.0, valid=True, novel=True, error=""):
    return CandidateScore(h, energy, e_hull, valid, valid, novel, error)


def test_filters_run_in_order_and_name_what_dropped_each():
    scores = [
        score("a", error="relax_diverged"),
        score("b", valid=False),
        score("c", novel=False),
        score("d", e_hull=0.3),
        score("e", e_hull=0.05),
        score("e", e_hull=0.05),
        score("f", e_hull=0.01),
        score("g", e_hull=None),
    ]
    criteria = SelectionCriteria(max_e_above_hull=0.1, max_selected=1)
    result = select_candidates(scores, criteria)
    assert result.selected == (6,)
    assert result.counts == {
        "generated": 8,
        "scored": 7,
        "valid": 6,
        "novel": 5,
        "stable": 3,
        "unique": 2,
        "selected": 1,
    }
    assert result.dropped == {
        0: "scored",
        1: "valid",
        2: "novel",
        3: "stable",
        7: "stable",
        5: "unique",
        4: "max_selected",
    }


def test_without_hull_the_lowest_energy_comes_first():
    scores = [score("a", None, -3.0), score("b", None, -4.0), score("c", None, None)]
    result = select_candidates(scores, SelectionCriteria(require_novel=False))
    assert result.selected == (1, 0, 2)


@pytest.fixture(scope="module")
def perovskite_structures(data_dir):
    import autoperi_data

    records = autoperi_data.read_records(data_dir / "perov_5" / "test.csv")
    return [next(records).crystal.to_pymatgen() for _ in range(3)]


def test_diversity_drops_a_near_copy_of_a_kept_structure(perovskite_structures):
    first, second, third = perovskite_structures
    near_copy = first.copy()
    near_copy.perturb(0.01, min_distance=0.005)
    structures = [first, near_copy, second, third]
    rows = {
        i: fingerprint_arrays(CrystalArrays.from_pymatgen(s))["struct"]
        for i, s in enumerate(structures)
    }
    asked = []

    def fingerprints(indices):
        asked.append(list(indices))
        return np.stack([rows[i] for i in indices])

    scores = [score(str(i), e_hull=0.01 * i) for i in range(4)]
    criteria = SelectionCriteria(min_fingerprint_distance=0.05)
    result = select_candidates(scores, criteria, fingerprints)
    assert float(np.linalg.norm(rows[0] - rows[1])) < 0.05
    assert result.dropped.get(1) == "diverse"
    assert 0 in result.selected and len(asked) == 1
    distances = [
        np.linalg.norm(rows[a] - rows[b]) for a in result.selected for b in result.selected
    ]
    assert min(d for d in distances if d > 0) >= 0.05


def test_diversity_needs_a_fingerprint_function():
    with pytest.raises(ValueError, match="fingerprint"):
        select_candidates([score("a")], SelectionCriteria(min_fingerprint_distance=0.1))


def test_the_rounds_fingerprints_are_computed_from_crystals(perovskite_structures):
    from xtal import Crystal

    from loop_svc._rounds import fingerprint_fn

    crystals = [Crystal.from_pymatgen(s) for s in perovskite_structures]
    rows = fingerprint_fn(crystals)([0, 2])
    expected = fingerprint_arrays(CrystalArrays.of(crystals[2]))["struct"]
    assert rows.shape == (2, 61) and np.isfinite(rows).all()
    np.testing.assert_allclose(rows[1], expected)
