"""Flow paths against independent references (scipy matrix functions, finite differences)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from autoperi_model._config import Config
from autoperi_model._fields import LatticeFlow, TorusFlow, crystal_mean
from autoperi_model._flow import FlowModel, build_model
from autoperi_model.testing import random_batch


@pytest.fixture()
def batch():
    return random_batch((1, 3, 5), seed=4, dtype=torch.float64)


def test_lattice_path_ends_at_a_rotation_of_the_data(batch):
    flow = LatticeFlow(volume_per_atom=12.0, base_std=0.2)
    x0 = flow.sample_base(batch, torch.Generator().manual_seed(0))
    x1 = batch.lattice
    ones = torch.ones(batch.num_crystals, dtype=torch.float64)
    end, log_u = flow.interpolate(x0, x1, ones, batch)
    start, _ = flow.interpolate(x0, x1, 0 * ones, batch)
    torch.testing.assert_close(start, x0, atol=1e-10, rtol=0)
    torch.testing.assert_close(end @ end.mT, x1 @ x1.mT, atol=1e-9, rtol=0)  # same Gram matrix
    for b in range(batch.num_crystals):  # end = L0 U with U = sqrtm(F F^T), F = L0^-1 L1
        f = np.linalg.solve(x0[b].numpy(), x1[b].numpy())
        u = scipy.linalg.sqrtm(f @ f.T).real
        np.testing.assert_allclose(end[b].numpy(), x0[b].numpy() @ u, atol=1e-9)
        np.testing.assert_allclose(log_u[b].numpy(), scipy.linalg.logm(u).real, atol=1e-9)


def test_lattice_velocity_is_the_time_derivative(batch):
    flow = LatticeFlow(volume_per_atom=12.0, base_std=0.2)
    x0 = flow.sample_base(batch, torch.Generator().manual_seed(1))
    t = torch.full((batch.num_crystals,), 0.3, dtype=torch.float64)
    h = 1e-6
    (lo, log_u), (hi, _) = (flow.interpolate(x0, batch.lattice, t + s, batch) for s in (-h, h))
    mid, _ = flow.interpolate(x0, batch.lattice, t, batch)
    torch.testing.assert_close((hi - lo) / (2 * h), mid @ log_u, atol=1e-7, rtol=0)


def test_lattice_base_volume(batch):
    flow = LatticeFlow(volume_per_atom=11.0, base_std=0.3)
    x0 = flow.sample_base(batch, torch.Generator().manual_seed(2))
    expected = 11.0 * batch.num_atoms.double()
    torch.testing.assert_close(torch.linalg.det(x0), expected, atol=1e-9, rtol=1e-12)
    torch.testing.assert_close(x0, x0.mT)


def test_torus_path_and_gauge(batch):
    flow = TorusFlow()
    x0 = flow.sample_base(batch, torch.Generator().manual_seed(3))
    ones = torch.ones(batch.num_crystals, dtype=torch.float64)
    end, target = flow.interpolate(x0, batch.frac_coords, ones, batch)
    diff = (end - batch.frac_coords + 0.5) % 1.0 - 0.5
    assert diff.abs().max() < 1e-12
    assert crystal_mean(target, batch).abs().max() < 1e-12
    assert target.abs().max() <= 1.0


@pytest.mark.parametrize(("sampler", "factor"), [("euler", 1), ("heun", 2)])
def test_sampler_counts_network_evaluations(sampler, factor, batch):
    model = build_model(Config(), volume_per_atom=12.0).double()
    calls = []
    model.backbone.register_forward_hook(lambda *args: calls.append(1))
    out, nfe = model.sample(batch, 3, sampler, torch.Generator().manual_seed(0))
    assert nfe == len(calls) == 3 * factor
    assert out.frac_coords.shape == batch.frac_coords.shape
    assert ((out.frac_coords >= 0) & (out.frac_coords < 1)).all()
    assert (torch.linalg.det(out.lattice) > 0).all()


def test_miswired_model_fails_at_construction():
    model = build_model(Config(), volume_per_atom=12.0)
    with pytest.raises(ValueError, match="no matching backbone output"):
        FlowModel(model.backbone, {"lattice": TorusFlow()}, {"lattice": 1.0})
