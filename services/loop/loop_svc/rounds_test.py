"""Score rows -> the selection's view: without a hull, candidates rank by energy above the
lowest of their formula, so every target composition gets picks; the relaxed crystals a round
ingests, with the sampled crystal where the scorer sent none."""

import numpy as np
import pytest

from loop_svc._rounds import candidate_scores, relaxed_messages
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


def test_relaxed_messages_fall_back_to_the_sampled_crystal_and_say_so(data_dir):
    from scorer_svc import Scores
    from trainer_svc.testing import perov_subset
    from xtal import convert

    a, b, c = perov_subset(data_dir, 3)
    relaxed_cell = a.lattice * 1.02
    scores = [
        Scores(0, lattice=relaxed_cell, frac_coords=a.frac_coords),  # relaxed
        Scores.failed(1, "", "relax_diverged", "no relaxed crystal"),  # failed: as sampled
        Scores(2),  # scored without a relaxed cell: as sampled
    ]
    messages, relaxed = relaxed_messages([a, b, c], scores)
    assert relaxed == [True, False, False]
    back = [convert.from_proto(m) for m in messages]
    assert np.allclose(back[0].lattice, relaxed_cell) and back[0].content_hash() != a.content_hash()
    assert back[1] == b and back[2] == c
