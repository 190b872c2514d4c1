"""Elemental references: ASE's reference states, formation energies against pymatgen's and
against the DFT formation energies MP-20 carries."""

from pathlib import Path

import numpy as np
import pytest
from autoperi_data import parse_split, read_split
from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
from pymatgen.core import Composition
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from autoperi_eval import (
    Hull,
    HullReference,
    RelaxSettings,
    elemental_reference_rows,
    elements_without_reference,
    hull_document,
    potential_protocol,
    read_json_document,
    reference_state,
    write_json_document,
)


@pytest.mark.parametrize(
    ("symbol", "kind", "atoms", "group"),
    [("Ti", "hcp", 2, 194), ("V", "bcc", 1, 229), ("Ni", "fcc", 1, 225), ("Si", "diamond", 2, 227)],
)
def test_a_reference_state_is_the_element_standard_crystal(symbol, kind, atoms, group):
    found_kind, crystal = reference_state(symbol)
    structure = crystal.to_pymatgen()
    assert found_kind == kind and len(structure) == atoms
    assert {e.symbol for e in structure.composition.elements} == {symbol}
    assert SpacegroupAnalyzer(structure, symprec=0.01).get_space_group_number() == group


@pytest.mark.parametrize("symbol", ["B", "Mn", "S"])
def test_an_element_with_a_complex_ground_state_has_no_reference_state(symbol):
    assert reference_state(symbol) is None


def test_elements_without_reference_are_those_no_scored_crystal_is_made_of_alone():
    rows = [
        {"formula": "Li2", "energy_per_atom": -1.9},
        {"formula": "O2", "error": "not scorable by the potential"},
        {"formula": "Li2 O1", "energy_per_atom": -4.7},
        {"formula": "Ti1 O2", "energy_per_atom": -8.8},
    ]
    assert elements_without_reference(rows) == ["O", "Ti"]


ENTRIES = {"Li": -1.9, "O": -4.9, "Li2O": -4.7, "Li2O2": -4.5, "Ti": -7.8, "TiO2": -8.8}


def test_formation_energy_equals_pymatgen_against_the_lowest_elemental_entries():
    comps = [Composition(f) for f in ENTRIES] + [Composition("Li")]
    energies = np.array([*ENTRIES.values(), -1.5])  # a second, higher Li entry
    hull = Hull(comps, energies)
    entries = [PDEntry(c, e * c.num_atoms) for c, e in zip(comps, energies, strict=True)]
    diagram = PhaseDiagram(entries)
    for formula, energy in (("Li2O", -4.7), ("LiO2", -4.0), ("Li2TiO3", -7.1)):
        comp = Composition(formula)
        expected = diagram.get_form_energy_per_atom(PDEntry(comp, energy * comp.num_atoms))
        assert hull.formation_energy(comp, energy) == pytest.approx(expected, abs=1e-12)


def test_an_elemental_reference_given_apart_serves_formation_energy_and_leaves_e_hull_alone():
    without_ti = {f: e for f, e in ENTRIES.items() if f != "Ti"}
    comps = [Composition(f) for f in without_ti]
    energies = np.array(list(without_ti.values()))
    plain, given = Hull(comps, energies), Hull(comps, energies, elemental={"Ti": -7.8})
    full = PhaseDiagram([PDEntry(Composition(f), e * Composition(f).num_atoms)
                         for f, e in ENTRIES.items()])  # fmt: skip
    tio2 = Composition("TiO2")
    expected = full.get_form_energy_per_atom(PDEntry(tio2, -8.7 * 3))
    assert np.isnan(plain.formation_energy(tio2, -8.7))
    assert given.formation_energy(tio2, -8.7) == pytest.approx(expected, abs=1e-12)
    for formula, energy in (("TiO2", -8.7), ("Li2O", -4.6), ("Li2TiO3", -7.1)):
        a = plain.e_above_hull(Composition(formula), energy)
        b = given.e_above_hull(Composition(formula), energy)
        assert (np.isnan(a) and np.isnan(b)) or a == b


def test_a_hull_reference_file_carries_its_elemental_references(tmp_path):
    rows = [{"crystal_hash": "c", "formula": "Ti1 O2", "energy_per_atom": -8.8,
             "energy_per_atom_single_point": -8.7, "relax_steps": 4}]  # fmt: skip
    elemental = ([{"element": "Ti", "structure": "hcp (ASE reference state)",
                   "energy_per_atom": -7.8}], ["O"])  # fmt: skip
    protocol = potential_protocol(RelaxSettings())
    path = tmp_path / "hull.json.gz"
    write_json_document(hull_document(rows, protocol, ["x@1"], elemental=elemental), path)
    assert HullReference.read(path).elemental == {"Ti": -7.8}
    write_json_document(hull_document(rows, protocol, ["x@1"]), path)
    assert HullReference.read(path).elemental == {}


def test_elemental_reference_rows_score_what_ase_can_build_and_name_the_rest():
    rows, missing = elemental_reference_rows(["V", "B"], RelaxSettings(steps=5), n_workers=1)
    assert missing == ["B"]
    (row,) = rows
    assert (row["element"], row["formula"]) == ("V", "V1")
    assert row["structure"] == "bcc (ASE reference state)"
    assert -12.0 < row["energy_per_atom"] <= row["energy_per_atom_single_point"] + 1e-6


HULL_FILE = Path(__file__).resolve().parents[3] / "checkpoints" / "mp_20_hull" / "hull.json.gz"


def test_the_shipped_hull_formation_energies_agree_with_dft_with_and_without_ase_references(
    data_dir,
):
    """MP-20 val crystals (all in the shipped reference) against the DFT formation energies of
    Materials Project that the split carries: compounds whose elements needed an ASE elemental
    reference agree as well as those whose elements have an elemental crystal in MP-20."""
    document = read_json_document(HULL_FILE)
    reference = HullReference.read(HULL_FILE)
    hull = Hull(reference.compositions, reference.e_relaxed, reference.elemental)
    energy = {r["crystal_hash"]: r["energy_per_atom"] for r in document["results"]}
    lacking, with_ase = set(document["elements_without_reference"]), set(reference.elemental)
    errors: dict[bool, list[float]] = {True: [], False: []}
    for record in read_split(parse_split("mp_20:val[:2000]"), data_dir):
        crystal = record.crystal
        composition = crystal.to_pymatgen().composition
        symbols = {e.symbol for e in composition.elements}
        formation = hull.formation_energy(composition, energy[crystal.content_hash()])
        assert np.isfinite(formation) == (not symbols & lacking), crystal.id
        if np.isfinite(formation) and len(symbols) > 1:
            dft = crystal.properties["formation_energy_per_atom"]
            errors[bool(symbols & with_ase)].append(abs(formation - dft))
    ase_mae, own_mae = np.mean(errors[True]), np.mean(errors[False])
    assert len(errors[True]) > 300 and len(errors[False]) > 300
    assert ase_mae < 0.08 and abs(ase_mae - own_mae) < 0.03, (ase_mae, own_mae)
