"""Score rows -> the selection's view: without a hull, candidates rank by energy above the
lowest of their formula, so every target composition gets picks."""

import pytest

from loop_svc._rounds import candidate_scores
from loop_svc._select import SelectionCriteria, select_candidates


def _row(formula: str, energy: float | None, i: int) -> dict:
    return {
        "content_hash": f"h{i}", "formula": formula, "energy_per_atom": energy,
        "e_above_hull": None, "structure_valid": True, "composition_valid": True,
        "novel": True, "error": "",
    }  # fmt: skip


ROWS = [_row("A", -8.0, 0), _row("A", -7.9, 1), _row("A", -7.5, 2), _row("B", -4.0, 3),
        _row("B", -3.0, 4), _row("C", None, 5)]  # fmt: skip


def test_absolute_energies_favour_the_low_energy_formula():
    picked = select_candidates(candidate_scores(ROWS), SelectionCriteria(max_selected=2))
    assert picked.selected == (0, 1)


def test_per_composition_energies_pick_the_best_of_each_formula_first():
    scores = candidate_scores(ROWS, per_composition=True)
    assert [s.energy_per_atom for s in scores[:5]] == pytest.approx([0.0, 0.1, 0.5, 0.0, 1.0])
    assert scores[5].energy_per_atom is None
    picked = select_candidates(scores, SelectionCriteria(max_selected=2))
    assert picked.selected == (0, 3)
