"""The scorer's hull reference: formation energies from the file's elemental references."""

import json

import pytest

from scorer_svc._hull import HullReference

ROWS = [
    {"formula": "O2", "energy_per_atom": -4.9},
    {"formula": "Ti1 O2", "energy_per_atom": -8.8},
]
TIO2 = [22, 8, 8]


def _reference(tmp_path, **extra) -> HullReference:
    path = tmp_path / "hull.json"
    path.write_text(json.dumps({"results": ROWS, **extra}))
    return HullReference(path)


def test_without_an_elemental_reference_the_formation_energy_is_unset(tmp_path):
    e_hull, formation = _reference(tmp_path).evaluate(TIO2, -8.7)
    assert e_hull == pytest.approx(0.1, abs=1e-9) and formation is None


def test_the_file_elemental_references_give_the_formation_energy_not_the_hull(tmp_path):
    titanium = {"element": "Ti", "structure": "hcp (ASE reference state)", "energy_per_atom": -7.8}
    reference = _reference(tmp_path, elemental_references=[titanium])
    e_hull, formation = reference.evaluate(TIO2, -8.7)
    assert e_hull == pytest.approx(0.1, abs=1e-9)
    assert formation == pytest.approx(-8.7 - (-7.8 - 2 * 4.9) / 3, abs=1e-9)
