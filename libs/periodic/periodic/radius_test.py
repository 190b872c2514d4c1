"""Radius graph against pymatgen's neighbour list on generated hard cases, and its contract."""

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from autoperi_data import read_records
from pymatgen.core import Lattice, Structure

from periodic import radius_graph
from periodic.testing import compare_edge_lists

TEST_SPLITS = {
    "perov_5": "perov_5/test.csv",
    "carbon_24": "carbon_24/test.csv",
    "mp_20": "mp_20/assembled/test.csv",
}
FULL_LIMITS = {"perov_5": None, "carbon_24": None, "mp_20": 2000}


def pymatgen_edges(structures: list[Structure], cutoffs: list[float]) -> tuple[np.ndarray, ...]:
    """pymatgen's neighbour lists of several structures in one global atom numbering."""
    parts, first = [], 0
    for structure, cutoff in zip(structures, cutoffs, strict=True):
        centre, neighbour, images, distances = structure.get_neighbor_list(cutoff)
        parts.append((centre + first, neighbour + first, np.rint(images), distances))
        first += len(structure)
    return tuple(np.concatenate(column) for column in zip(*parts, strict=True))


def our_edges(structures: list[Structure], cutoffs: list[float]) -> tuple[np.ndarray, ...]:
    """Our radius graph of the structures, batched in one call."""
    graph = radius_graph(
        torch.tensor(np.stack([s.lattice.matrix for s in structures])),
        torch.tensor(np.concatenate([s.frac_coords for s in structures])),
        torch.tensor(cutoffs, dtype=torch.float64),
        num_atoms=torch.tensor([len(s) for s in structures]),
    )
    return (
        graph.edge_index[0].numpy(),
        graph.edge_index[1].numpy(),
        graph.cell_offsets.numpy(),
        graph.edge_lengths.numpy(),
    )


def assert_matches_pymatgen(structures: list[Structure], cutoffs: list[float]) -> int:
    """Assert edge-for-edge equality per crystal (pairs within 1e-6 A of the cutoff aside, see
    ``periodic.testing``); returns the number of matched edges.
    """
    ours, ref = our_edges(structures, cutoffs), pymatgen_edges(structures, cutoffs)
    first = np.cumsum([0] + [len(s) for s in structures])
    matched = 0
    for index, cutoff in enumerate(cutoffs):
        sel = [(lst[0] >= first[index]) & (lst[0] < first[index + 1]) for lst in (ours, ref)]
        result = compare_edge_lists(
            tuple(col[sel[0]] for col in ours), tuple(col[sel[1]] for col in ref), cutoff
        )
        assert result.identical, (index, structures[index].lattice.parameters, cutoff, result)
        matched += result.matched
    return matched


def _valid_angles(rng: np.random.Generator, low: float, high: float) -> np.ndarray:
    while True:
        angles = rng.uniform(low, high, 3)
        cos = np.cos(np.radians(angles))
        gram = np.array([[1, cos[2], cos[1]], [cos[2], 1, cos[0]], [cos[1], cos[0], 1]])
        if np.linalg.det(gram) > 0.02:
            return angles


def _structure(lengths, angles, n_atoms: int, rng: np.random.Generator) -> Structure:
    """Random atoms in a cell, coordinates in [-0.5, 1.5) (not wrapped) to test the contract."""
    lattice = Lattice.from_parameters(*lengths, *angles)
    return Structure(lattice, ["C"] * n_atoms, rng.uniform(-0.5, 1.5, size=(n_atoms, 3)))


def hard_cases() -> list[tuple[str, Structure, float]]:
    """Skewed (20-160 degrees), needle, slab and one-atom cells; cutoffs up to 3x the longest
    edge.
    """
    rng = np.random.default_rng(2024)
    cases = []
    for n in range(40):
        angles = _valid_angles(rng, 20.0, 160.0)
        structure = _structure(rng.uniform(1.5, 7.0, 3), angles, int(rng.integers(1, 6)), rng)
        cases.append((f"skewed-{n}", structure, float(rng.uniform(0.5, 9.0))))
    for angles in ((20, 20, 20), (160, 90, 90), (90, 20, 90), (35, 150, 140), (25, 25, 40)):
        structure = _structure((3.0, 3.5, 4.0), angles, 3, rng)
        cases.append((f"extreme-{angles}", structure, 6.0))
    shapes = {"needle-c": (1.2, 1.5, 25.0), "needle-a": (30.0, 1.0, 1.1), "slab": (15, 12, 0.9)}
    for name, lengths in shapes.items():
        structure = _structure(lengths, _valid_angles(rng, 60, 120), 4, rng)
        cases.append((name, structure, 7.0))
    for n in range(6):
        lengths = rng.uniform(1.5, 4.0, 3)
        angles = _valid_angles(rng, 20.0, 160.0) if n % 2 else (90, 90, 90)
        structure = _structure(lengths, angles, 1, rng)
        cases.append((f"one-atom-{n}", structure, float(3.0 * lengths.max())))
    for n in range(4):
        lengths = rng.uniform(2.0, 4.0, 3)
        structure = _structure(lengths, _valid_angles(rng, 40, 140), 2 + n % 2, rng)
        cases.append((f"three-edges-{n}", structure, float(3.0 * structure.lattice.abc[2])))
    return cases


HARD_CASES = hard_cases()


@pytest.mark.parametrize("case", HARD_CASES, ids=[name for name, _, _ in HARD_CASES])
def test_hard_case_matches_pymatgen(case: tuple[str, Structure, float]) -> None:
    _, structure, cutoff = case
    assert_matches_pymatgen([structure], [cutoff])


def test_hard_cases_batched_together_match_pymatgen() -> None:
    structures = [s for _, s, _ in HARD_CASES]
    assert assert_matches_pymatgen(structures, [c for _, _, c in HARD_CASES]) > 10_000


def test_cutoff_three_times_longest_edge_reaches_far_images() -> None:
    structure = Structure(Lattice.cubic(2.0), ["C"], [[0.0, 0.0, 0.0]])
    graph = radius_graph(torch.tensor(structure.lattice.matrix), torch.zeros(1, 3).double(), 6.5)
    assert int(graph.cell_offsets.abs().max()) == 3  # images 3 cells away, beyond {-1, 0, 1}
    lattice_points = sum(
        1 for k in np.ndindex(7, 7, 7) if 0 < np.linalg.norm((np.array(k) - 3) * 2.0) < 6.5
    )
    assert graph.edge_index.shape[1] == lattice_points
    assert bool((graph.edge_index[0] == graph.edge_index[1]).all())  # only self-images


def _split_structures(data_dir: Path, dataset: str, limit: int | None) -> list[Structure]:
    records = itertools.islice(read_records(data_dir / TEST_SPLITS[dataset]), limit)
    return [record.crystal.to_pymatgen() for record in records if record.crystal is not None]


def _assert_split_matches(structures: list[Structure], cutoff: float, batch: int = 128) -> None:
    for start in range(0, len(structures), batch):
        chunk = structures[start : start + batch]
        assert assert_matches_pymatgen(chunk, [cutoff] * len(chunk)) > 0


@pytest.mark.parametrize("dataset", sorted(TEST_SPLITS))
def test_test_split_subset_matches_pymatgen(data_dir: Path, dataset: str) -> None:
    """The first 200 test crystals of each dataset at 6 A, and the first 40 at 9.5 A."""
    structures = _split_structures(data_dir, dataset, 200)
    assert len(structures) == 200
    _assert_split_matches(structures, 6.0)
    _assert_split_matches(structures[:40], 9.5)


@pytest.mark.slow
@pytest.mark.parametrize("dataset", sorted(TEST_SPLITS))
def test_full_test_split_matches_pymatgen(data_dir: Path, dataset: str) -> None:
    """Whole Perov-5 and Carbon-24 test splits and 2,000 MP-20 test crystals at 6 A."""
    structures = _split_structures(data_dir, dataset, FULL_LIMITS[dataset])
    assert len(structures) == (FULL_LIMITS[dataset] or len(structures))
    _assert_split_matches(structures, 6.0)
