"""The array graph converter against CHGNet's own `CrystalGraphConverter`, tensor for tensor."""

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

from scorer_svc._bench import load_split
from scorer_svc._graph import ArrayGraphConverter, pair_bonds

FIELDS = (
    "atomic_number", "atom_frac_coord", "atom_graph", "neighbor_image", "directed2undirected",
    "undirected2directed", "bond_graph", "lattice",
)  # fmt: skip


def _assert_same_graph(theirs, ours):
    for name in FIELDS:
        a, b = getattr(theirs, name), getattr(ours, name)
        assert (a.shape, a.dtype) == (b.shape, b.dtype), name
        assert torch.equal(a, b), name
    assert ours.composition == theirs.composition
    assert ours.atom_frac_coord.requires_grad and ours.lattice.requires_grad


def _special_cases() -> dict[str, Structure]:
    return {
        "one_atom_bonded_to_its_images": Structure(Lattice.cubic(2.5), ["Si"], [[0, 0, 0]]),
        "no_angles": Structure(Lattice.cubic(9.0), ["Na", "Cl"], [[0, 0, 0], [0.4, 0, 0]]),
        "skewed_cell": Structure(
            Lattice.from_parameters(3.1, 3.3, 7.9, 61, 97, 118), ["Ga", "N", "N"],
            [[0, 0, 0], [0.31, 0.22, 0.14], [0.7, 0.61, 0.52]],
        ),
    }  # fmt: skip


@pytest.fixture(scope="module")
def converters(chgnet_model):
    return chgnet_model.graph_converter, ArrayGraphConverter(chgnet_model.graph_converter)


def test_equals_chgnet_on_dataset_crystals(converters, data_dir):
    theirs, ours = converters
    crystals = load_split("perov_5", 60) + load_split("mp_20", 120)
    angles = 0
    for crystal in crystals:
        structure = crystal.to_pymatgen()
        expected = theirs(structure)
        _assert_same_graph(expected, ours(structure))
        angles += len(expected.bond_graph)
    assert angles > 10_000  # angle lists that could differ


@pytest.mark.parametrize("case", sorted(_special_cases()))
def test_equals_chgnet_on_special_cells(converters, case):
    theirs, ours = converters
    structure = _special_cases()[case]
    _assert_same_graph(theirs(structure), ours(structure))


def test_isolated_atoms_follow_the_policy(converters):
    theirs, ours = converters
    lonely = Structure(Lattice.cubic(12.0), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    before = theirs.on_isolated_atoms
    try:
        for converter in converters:
            converter.set_isolated_atom_response("error")
            with pytest.raises(ValueError, match="2 isolated atom"):
                converter(lonely)
            converter.set_isolated_atom_response("ignore")
        _assert_same_graph(theirs(lonely), ours(lonely))
    finally:
        theirs.set_isolated_atom_response(before)
        ours.set_isolated_atom_response(before)


def test_an_entry_without_its_reverse_is_refused():
    center, neighbor = np.array([0, 1, 0]), np.array([1, 0, 1])
    image = np.array([[0, 0, 0], [0, 0, 0], [1, 0, 0]])
    with pytest.raises(ValueError, match="not symmetric"):
        pair_bonds(center, neighbor, image)
    first, second, to_bond = pair_bonds(center[:2], neighbor[:2], image[:2])
    assert (first.tolist(), second.tolist(), to_bond.tolist()) == ([0], [1], [0, 0])
