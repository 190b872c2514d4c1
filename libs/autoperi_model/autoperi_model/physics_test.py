"""Minimum-distance penalty: zero on real crystals, exact on a hand-made pair, right gradient."""

from __future__ import annotations

import pytest
import torch

from autoperi_model._batch import CrystalBatch
from autoperi_model._config import PhysicsConfig
from autoperi_model._physics import min_distance_penalty, min_distances
from autoperi_model.data_test import perov5_table


def _pair(distance: float, z=(8, 8), cell: float = 10.0) -> CrystalBatch:
    frac = [[0.0, 0.0, 0.0], [distance / cell, 0.0, 0.0]]
    return CrystalBatch.from_arrays(
        [torch.eye(3).numpy() * cell], [torch.tensor(frac).numpy()], [list(z)], torch.float64
    )


def test_penalty_counts_both_directions_of_a_close_pair():
    batch = _pair(0.6)
    d_min = float(min_distances(torch.tensor([8]), torch.tensor([8]), 0.7))  # 0.7 * 2 * 0.66
    penalty = min_distance_penalty(batch, 0.7)
    torch.testing.assert_close(penalty, torch.tensor([2 * (d_min - 0.6) / 2], dtype=torch.float64))
    assert float(min_distance_penalty(_pair(1.2), 0.7)) == 0.0


def test_gradient_pushes_the_atoms_apart_and_matches_finite_differences():
    batch = _pair(0.6)
    frac = batch.frac_coords.clone().requires_grad_(True)
    min_distance_penalty(batch.replace(frac_coords=frac), 0.7).sum().backward()
    assert frac.grad[1, 0] < 0 < frac.grad[0, 0]
    h = 1e-6
    plus = batch.frac_coords.clone()
    plus[1, 0] += h
    minus = batch.frac_coords.clone()
    minus[1, 0] -= h
    fd = (
        min_distance_penalty(batch.replace(frac_coords=plus), 0.7)
        - min_distance_penalty(batch.replace(frac_coords=minus), 0.7)
    ) / (2 * h)
    torch.testing.assert_close(frac.grad[1, 0], fd[0], atol=1e-6, rtol=1e-6)


def test_collapsed_cells_are_skipped():
    batch = _pair(0.01, cell=1.0)  # 0.5 A^3 per atom
    assert float(min_distance_penalty(batch, 0.7)) == 0.0


@pytest.mark.parametrize("split", ["test", pytest.param("train", marks=pytest.mark.slow)])
def test_no_perov5_crystal_is_penalised_at_the_default_scale(data_dir, split):
    table = perov5_table(data_dir, split)
    batch = table.gather(torch.arange(len(table)))
    assert float(min_distance_penalty(batch, PhysicsConfig().min_distance_scale).max()) == 0.0
    assert float(min_distance_penalty(batch, 0.7).max()) > 0  # the margin is real
