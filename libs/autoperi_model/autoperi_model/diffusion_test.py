"""Diffusion on torus x lattice: symmetry (kit), paths vs scipy, the DDPM posterior vs the
forward marginals (sampling statistics), and a short training run."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
from periodic import keys, wrap_delta

from autoperi_model._config import BackboneConfig, Config
from autoperi_model._diffusion import DiffusionModel, LatticeDiffusion, TorusDiffusion
from autoperi_model._fields import crystal_mean
from autoperi_model._flow import build_model
from autoperi_model._train import train
from autoperi_model.testing import EquivarianceSuite, FieldKind, random_batch

SMALL = BackboneConfig(
    hidden=32, layers=2, num_rbf=8, time_dim=8, cutoff=5.0, max_neighbors=12, lattice_vectors=14
)
DIFFUSION = Config(backbone=SMALL, process="diffusion")


class TestDiffusionPredictionSymmetry(EquivarianceSuite):
    def model_fn(self, dtype):
        torch.manual_seed(2)
        model = build_model(DIFFUSION, volume_per_atom=12.0).to(dtype)
        assert isinstance(model, DiffusionModel)
        for param in model.parameters():
            param.data.add_(0.05 * torch.randn_like(param))

        def fn(batch):
            return model.predictions(batch, torch.full((batch.num_crystals,), 0.3, dtype=dtype))

        return fn, {
            keys.FRAC_COORDS: FieldKind.ATOM_FRAC_VECTOR,
            keys.LATTICE: FieldKind.CRYSTAL_CART_SYMMETRIC,
        }


@pytest.fixture()
def batch():
    return random_batch((1, 3, 5), seed=7, dtype=torch.float64)


def test_lattice_coefficients_match_scipy_and_round_trip(batch):
    proc = LatticeDiffusion(volume_per_atom=12.0, sigma=0.3)
    c = proc.to_coefficients(batch.lattice, batch)
    for b, n in enumerate(batch.num_atoms.tolist()):
        gram = batch.lattice[b].numpy() @ batch.lattice[b].numpy().T / (12.0 * n) ** (2 / 3)
        np.testing.assert_allclose(c[b].numpy(), 0.5 * scipy.linalg.logm(gram).real, atol=1e-10)
    back = proc.from_coefficients(c, batch)
    torch.testing.assert_close(back @ back.mT, batch.lattice @ batch.lattice.mT)


def test_lattice_target_takes_the_noisy_state_to_the_data(batch):
    proc = LatticeDiffusion(volume_per_atom=12.0, sigma=0.3)
    t = torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64)
    state, target = proc.corrupt(batch.lattice, t, batch, torch.Generator().manual_seed(0))
    torch.testing.assert_close(target, target.mT)
    clean = proc.clean_estimate(state, target, t, batch)
    torch.testing.assert_close(clean @ clean.mT, batch.lattice @ batch.lattice.mT)


def test_torus_target_is_the_mean_free_shortest_path_to_the_data(batch):
    proc = TorusDiffusion(sigma_min=0.005, sigma_max=0.5, loss_floor=0.05)
    t = torch.tensor([0.2, 0.6, 0.95], dtype=torch.float64)
    state, target = proc.corrupt(batch.frac_coords, t, batch, torch.Generator().manual_seed(1))
    assert crystal_mean(target, batch).abs().max() < 1e-12
    shift = wrap_delta(proc.clean_estimate(state, target, t, batch) - batch.frac_coords)
    per_crystal = shift - crystal_mean(shift, batch).index_select(0, batch.batch)
    assert per_crystal.abs().max() < 1e-9  # equal to the data up to a translation


def _replicated(n: int) -> object:
    one = random_batch((4,), seed=3, dtype=torch.float64)
    from autoperi_model._batch import CrystalBatch

    reps = [one.lattice[0].numpy()] * n
    return CrystalBatch.from_arrays(
        reps, [one.frac_coords.numpy()] * n, [one.atomic_numbers.numpy()] * n, torch.float64
    )


def test_lattice_posterior_step_reproduces_the_forward_marginal():
    batch = _replicated(4000)
    proc = LatticeDiffusion(volume_per_atom=12.0, sigma=0.3)
    gen = torch.Generator().manual_seed(5)
    t, s = 0.4, 0.6
    c1 = proc.to_coefficients(batch.lattice, batch)
    state, target = proc.corrupt(batch.lattice, torch.full((4000,), t), batch, gen)
    stepped = proc.reverse_step(state, target, t, s, batch, gen)
    c_s = proc.to_coefficients(stepped, batch)
    abar = float(proc.alpha_bar(s))
    expected_mean = np.sqrt(abar) * c1[0]
    torch.testing.assert_close(c_s.mean(0), expected_mean, atol=0.02, rtol=0)
    diag_std = c_s.diagonal(dim1=-2, dim2=-1).std(0)
    expected_std = np.sqrt(1 - abar) * 0.3
    assert torch.allclose(diag_std, torch.full((3,), expected_std, dtype=torch.float64), atol=0.01)


def test_torus_posterior_step_reproduces_the_forward_marginal():
    batch = _replicated(4000)
    proc = TorusDiffusion(sigma_min=0.005, sigma_max=0.5, loss_floor=0.05)
    gen = torch.Generator().manual_seed(6)
    t, s = 0.7, 0.8  # small noise: wrapping is negligible, the marginal is Gaussian
    times = torch.full((4000,), t, dtype=torch.float64)
    state, _ = proc.corrupt(batch.frac_coords, times, batch, gen)
    exact = wrap_delta(batch.frac_coords - state)  # the displacement with its mean kept
    stepped = proc.reverse_step(state, exact, t, s, batch, gen)
    error = wrap_delta(stepped - batch.frac_coords)
    sigma_s = float(proc.sigma(torch.tensor(s, dtype=torch.float64)))
    assert abs(float(error.mean())) < 3 * sigma_s / np.sqrt(error.numel())
    assert abs(float(error.std()) / sigma_s - 1) < 0.02


def test_sampling_gives_finite_crystals_and_counts_nfe(tiny_data):
    model = build_model(DIFFUSION, volume_per_atom=tiny_data.train.volume_per_atom())
    template = tiny_data.val.gather(torch.arange(8)).to(torch.float32)
    out, nfe = model.sample(template, 5, "ddpm", torch.Generator().manual_seed(0))
    assert nfe == 5 and torch.isfinite(out.lattice).all() and torch.isfinite(out.frac_coords).all()
    assert (out.frac_coords >= 0).all() and (out.frac_coords < 1).all()
    with pytest.raises(ValueError, match="ddpm"):
        model.sample(template, 5, "euler", torch.Generator())


def test_training_lowers_the_diffusion_loss(tiny_config, tiny_data, tmp_path):
    config = tiny_config.model_copy(update={"process": "diffusion"})
    losses = []
    train(config, tiny_data, tmp_path / "ck", callbacks=[lambda s, m: losses.append(m["loss"])])
    assert len(losses) == 4 and losses[-1] < losses[0]
