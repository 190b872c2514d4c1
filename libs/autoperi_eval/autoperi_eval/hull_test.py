"""E_hull from per-chemical-system PhaseDiagrams against a linear program."""

import numpy as np
import pytest
from pymatgen.core import Composition
from scipy.optimize import linprog

from autoperi_eval import Hull
from autoperi_eval._hull import relevant_entries


def lp_hull_energy(target: Composition, comps: list[Composition], energies: np.ndarray) -> float:
    """min sum_i w_i e_i subject to sum_i w_i x_i = x(target), w >= 0 (per-atom energies)."""
    system = {el.symbol for el in target.elements}
    elements = sorted({el.symbol for c in comps for el in c.elements} | system)
    usable = [i for i, c in enumerate(comps) if {e.symbol for e in c.elements} <= system]
    if not usable:
        return float("nan")
    a = np.array([[comps[i].get_atomic_fraction(e) for i in usable] for e in elements])
    b = np.array([target.get_atomic_fraction(e) for e in elements])
    res = linprog(energies[usable], A_eq=a, b_eq=b, bounds=(0, None), method="highs")
    return float(res.fun) if res.status == 0 else float("nan")


def random_reference(seed: int, with_elements: bool):
    rng = np.random.default_rng(seed)
    comps, energies = [], []
    if with_elements:
        for el in ("Li", "Fe", "O"):
            comps.append(Composition(el))
            energies.append(rng.normal(-3, 0.5))
    for _ in range(25):
        counts = rng.integers(0, 4, size=3)
        if counts.sum() == 0 or (counts > 0).sum() < 2:
            continue
        comps.append(Composition(dict(zip(("Li", "Fe", "O"), counts.tolist(), strict=True))))
        energies.append(rng.normal(-5, 1))
    return comps, np.array(energies)


@pytest.mark.parametrize("seed", range(5))
def test_matches_linear_program_with_elements(seed: int) -> None:
    comps, energies = random_reference(seed, with_elements=True)
    hull = Hull(comps, energies)
    for target in ("LiFeO2", "Li2O", "FeO", "Li5FeO4", "Fe2O3", "LiO"):
        comp = Composition(target)
        expected = -1.0 - lp_hull_energy(comp, comps, energies)
        assert hull.e_above_hull(comp, -1.0) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("seed", range(5))
def test_missing_elements_inside_span_match_lp_outside_nan(seed: int) -> None:
    comps, energies = random_reference(seed, with_elements=False)
    hull = Hull(comps, energies)
    for comp in [*comps, Composition("LiFeO2"), Composition("Li"), Composition("Li9FeO")]:
        lp = lp_hull_energy(comp, comps, energies)
        value = hull.e_above_hull(comp, -4.0)
        if np.isnan(lp):
            assert np.isnan(value)
        else:
            assert value == pytest.approx(-4.0 - lp, abs=1e-6)


def test_relevant_entries_are_subsystems() -> None:
    ref = [Composition(f) for f in ("Li", "O2", "Li2O", "Fe", "LiFeO2", "NaCl", "FeO")]
    assert relevant_entries(ref, [Composition("Li2O")]) == [0, 1, 2]
    assert relevant_entries(ref, [Composition("LiFeO2")]) == [0, 1, 2, 3, 4, 6]
