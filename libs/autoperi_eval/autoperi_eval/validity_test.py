"""Hand-checked validity cases and cross-checks against independent references."""

import itertools
import math

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure
from smact.screening import smact_validity as smact4_validity

from autoperi_eval import composition_valid, reduced_composition, smact_validity, structural_check
from autoperi_eval._structs import build_from_parameters, build_record
from autoperi_eval._validity import _pauling_ok, shortest_lattice_vector


def rocksalt(a: float = 5.64) -> Structure:
    return Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(a), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )


def symbols_valid(formula: dict[str, int]) -> bool:
    from pymatgen.core import Element

    numbers = [Element(s).Z for s, n in formula.items() for _ in range(n)]
    return composition_valid(numbers)


@pytest.mark.parametrize(
    ("formula", "expected"),
    [
        ({"Na": 1, "Cl": 1}, True),  # charge balanced
        ({"Na": 1, "Cl": 2}, False),  # Na+ with two Cl-: no neutral combination
        ({"Na": 2, "O": 1}, True),
        ({"Ti": 1, "Sr": 1, "O": 3}, True),
        ({"Cu": 1, "Zn": 1}, True),  # alloy: all metals
        ({"Fe": 3, "Al": 1}, True),  # alloy
        ({"Si": 8}, True),  # one element
        ({"C": 1}, True),
        ({"Ar": 1, "F": 2}, False),  # Ar has no oxidation states in SMACT: invalid, no crash
        ({"Ne": 1, "O": 1}, False),
        ({"Na": 2, "Cl": 2}, True),  # gcd-reduced to NaCl
    ],
)
def test_hand_checked_compositions(formula: dict[str, int], expected: bool) -> None:
    assert symbols_valid(formula) is expected


def test_reduced_composition_sorted_and_gcd() -> None:
    assert reduced_composition([17, 11, 17, 11]) == ((11, 17), (1, 1))
    assert reduced_composition([8, 8, 8, 22, 38, 8, 8, 8, 22, 38]) == ((8, 22, 38), (3, 1, 1))


@pytest.mark.parametrize(
    "formula",
    [
        "NaCl",
        "NaCl2",
        "Fe2O3",
        "FeO",
        "LiFePO4",
        "CsPbI3",
        "BaTiO3",
        "MgAl2O4",
        "NaClO4",
        "GaN",
        "SiO2",
        "CaF2",
        "K2SO4",
        "Li3N",
        "ZnS",
        "CuZn",
        "Fe3Al",
        "TiO2F",
        "SrTiO3",
        "La2CuO4",
        "BiPtN2O",
        "CO2",
        "SF6",
        "NaCl3",
        "Ba2YCu3O7",
        "H2O",
        "NH3",
        "HgCl",
        "Mn3O4",
        "Al2O3",
    ],
)
def test_matches_smact4_with_the_2014_oxidation_states(formula: str) -> None:
    """smact 4's own port of CDVAE's check, with the 2014 states, is an independent reference
    (it differs only for elements without electronegativity, which these formulas avoid)."""
    from pymatgen.core import Composition

    comp = Composition(formula)
    numbers = [el.Z for el, n in comp.items() for _ in range(int(n))]
    assert composition_valid(numbers) == smact4_validity(comp, oxidation_states_set="smact14")


def test_missing_electronegativity_follows_cdvae() -> None:
    # opposite-sign pair with a missing value: smact 2.2.1 raised TypeError, CDVAE counted a pass
    assert _pauling_ok((3, -1), (None, 2.96)) is True
    # same-sign pair with a missing value: smact 2.2.1 returned False
    assert _pauling_ok((3, 3, -2), (None, 1.5, 3.44)) is False
    # a regular violation before the missing value decides
    assert _pauling_ok((-1, 1, 3), (1.0, 2.0, None)) is False
    pm = 61  # Pm has no Pauling electronegativity in SMACT
    assert smact_validity((35, pm), (3, 1)) is True  # PmBr3 through the CDVAE pass


def test_oxidation_combination_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    """More than 1e7 oxidation-state combinations: invalid, as DiffCSP decides ("> cap")."""
    from pymatgen.core import Element as PE
    from smact import Element

    from autoperi_eval import _validity

    # many multivalent elements plus oxygen (not an alloy); smact 4 without a cap calls it valid
    symbols = ["O", "Mn", "Fe", "Co", "Ni", "Cr", "V", "Ru", "Os", "Re"]
    assert math.prod(len(Element(s).oxidation_states_smact14) for s in symbols) > 1e7
    elements = tuple(sorted(PE(s).Z for s in symbols))
    assert smact_validity(elements, tuple(1 for _ in symbols)) is False
    # the threshold itself: NaCl has 2 x 8 = 16 combinations of SMACT 2014 states
    assert (
        len(Element("Na").oxidation_states_smact14) * len(Element("Cl").oxidation_states_smact14)
        == 16
    )
    for cap, expected in ((16, True), (15, False)):
        monkeypatch.setattr(_validity, "MAX_OX_COMBINATIONS", cap)
        smact_validity.cache_clear()
        assert smact_validity((11, 17), (1, 1)) is expected
    smact_validity.cache_clear()


def test_structural_validity_distance_threshold() -> None:
    lattice = Lattice.cubic(6.0)
    close = Structure(
        lattice, ["Na", "Cl"], [[0, 0, 0], [0.4 / 6.0, 0, 0]], coords_are_cartesian=False
    )
    far = Structure(lattice, ["Na", "Cl"], [[0, 0, 0], [0.6 / 6.0, 0, 0]])
    assert not structural_check(close).valid
    assert not structural_check(close).valid_cdvae
    assert structural_check(far).valid
    assert structural_check(rocksalt()).valid
    assert structural_check(close).min_distance == pytest.approx(0.4)


def test_self_image_distance_counts_but_not_for_cdvae() -> None:
    # one short lattice vector: an atom meets its own image at 0.4 A
    structure = Structure(Lattice.orthorhombic(0.4, 5, 5), ["Fe"], [[0, 0, 0]])
    check = structural_check(structure)
    assert check.valid_cdvae  # CDVAE pads the diagonal of the distance matrix
    assert not check.valid
    assert check.shortest_lattice_vector == pytest.approx(0.4)


def test_min_distance_matches_brute_force() -> None:
    rng = np.random.default_rng(3)
    for _ in range(20):
        lattice = rng.normal(size=(3, 3)) * 2 + np.eye(3) * 4
        frac = rng.random((4, 3))
        structure = Structure(Lattice(lattice), ["Si"] * 4, frac)
        images = np.array(list(itertools.product(range(-4, 5), repeat=3)))  # (729, 3)
        best = math.inf
        for i, j in itertools.product(range(4), repeat=2):
            d = np.linalg.norm((frac[j] + images - frac[i]) @ lattice, axis=1)
            if i == j:
                d = d[np.any(images != 0, axis=1)]
            best = min(best, d.min())
        assert structural_check(structure).min_distance == pytest.approx(best, rel=1e-9)
        shortest = np.linalg.norm(images[np.any(images != 0, axis=1)] @ lattice, axis=1).min()
        assert shortest_lattice_vector(lattice) == pytest.approx(shortest, rel=1e-9)


def test_building_rules() -> None:
    numbers = np.array([11, 17])
    frac = np.array([[0, 0, 0], [0.5, 0.5, 0.5]])
    assert build_record(0, np.eye(3) * 5, numbers, frac).constructed
    assert build_record(0, np.eye(3) * 0.4, numbers, frac).reason == "unrealistically_small_lattice"
    nan_lattice = np.eye(3) * 5
    nan_lattice[0, 0] = np.nan
    assert build_record(0, nan_lattice, numbers, frac).reason == "nan_value"
    assert build_record(0, np.eye(3) * 5, np.array([11, 0]), frac).reason.startswith("construction")
    record = build_from_parameters(0, np.array([-1, 5, 5]), np.array([90, 90, 90]), numbers, frac)
    assert record.reason == "non_positive_lattice"
    assert not record.constructed
