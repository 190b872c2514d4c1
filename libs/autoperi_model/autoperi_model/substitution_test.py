"""The learned substitution priors (`_substitution`); in a checkpoint: see ion_exchange_test."""

from __future__ import annotations

import numpy as np
import pytest

from autoperi_model._ion_exchange import reduced_key
from autoperi_model._substitution import (
    SubstitutionOptions,
    charge_balanced,
    element_volumes,
    learned_weights,
)
from autoperi_model._templates import MAX_Z


def test_element_volumes_recover_the_volumes_that_made_the_cells():
    rng = np.random.default_rng(0)
    truth = np.zeros(MAX_Z + 1)
    elements = np.array([3, 8, 15, 26, 56])
    truth[elements] = [8.0, 12.0, 20.0, 11.0, 35.0]
    cells = [rng.choice(elements, size=rng.integers(2, 12)) for _ in range(200)]
    volumes = np.array([truth[z].sum() for z in cells])
    fitted = element_volumes(cells, volumes)
    np.testing.assert_allclose(fitted[elements], truth[elements], rtol=1e-6)
    assert fitted[29] > 0  # an element no cell holds still gets a volume


def test_learned_weights_follow_the_substitution_score():
    substitution = np.zeros((MAX_Z + 1, MAX_Z + 1))
    substitution[26, [25, 27, 28]] = [2.0, 0.5, -1.0]
    weights = learned_weights(np.array([25, 27, 28]), 26, substitution)
    assert weights[0] > weights[1] > weights[2] > 0
    assert weights[1] / weights[2] == pytest.approx(np.exp(1.5))


def test_charge_balance_is_smacts_on_the_reduced_composition():
    for numbers, expected in [([11, 17], True), ([11, 17, 17], False), ([29, 79, 79, 79], True)]:
        assert charge_balanced(reduced_key(np.array(numbers))) is expected
    li2o, li4o2 = reduced_key(np.array([3, 3, 8])), reduced_key(np.array([3, 3, 3, 3, 8, 8]))
    assert li2o == li4o2 and charge_balanced(li2o) is charge_balanced(li4o2) is True


def test_unknown_options_are_refused():
    assert SubstitutionOptions.of({}) == SubstitutionOptions()
    with pytest.raises(ValueError, match="unknown substitution options"):
        SubstitutionOptions.of({"substitution": {"learned_partner": True}})
