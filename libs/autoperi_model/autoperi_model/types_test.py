"""Masked discrete flow on atom types: the path, the loss and the jumps against their
definitions (binomial rates, a direct log-softmax), and a de novo model end to end."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.special
import torch

from autoperi_model._config import Config
from autoperi_model._flow import build_model
from autoperi_model._types import MASK, MaskedTypeFlow
from autoperi_model.testing import random_batch

DRAWS = 20_000


def _many(size: int):
    """One crystal of `size` atoms, so per-atom draws are independent trials."""
    return random_batch((size,), seed=1, dtype=torch.float32)


def _binomial_ok(hits: int, n: int, p: float, sigmas: float = 5.0) -> bool:
    return abs(hits - n * p) <= sigmas * math.sqrt(n * p * (1 - p)) + 1


@pytest.mark.parametrize("t", [0.0, 0.3, 0.8])
def test_corrupt_reveals_each_atom_with_probability_t(t):
    batch, flow = _many(DRAWS), MaskedTypeFlow()
    x_t, target = flow.corrupt(
        batch.atomic_numbers, torch.tensor([t]), batch, torch.Generator().manual_seed(0)
    )
    revealed = x_t != MASK
    assert torch.equal(target, batch.atomic_numbers)
    assert torch.equal(x_t[revealed], batch.atomic_numbers[revealed])
    assert _binomial_ok(int(revealed.sum()), DRAWS, t)


def test_loss_is_cross_entropy_on_masked_atoms_only():
    batch, flow = random_batch((3, 5), seed=2, dtype=torch.float32), MaskedTypeFlow()
    gen = torch.Generator().manual_seed(1)
    x_t, target = flow.corrupt(batch.atomic_numbers, torch.tensor([0.5, 0.5]), batch, gen)
    state = batch.replace(atomic_numbers=x_t)
    raw = torch.randn((8, 101), generator=gen)
    pred = flow.project(raw, state)
    got = flow.loss(pred, target, torch.tensor([0.5, 0.5]), state)
    logits = raw.numpy().astype(np.float64)
    logits[:, MASK] = -np.inf
    log_p = scipy.special.log_softmax(logits, axis=1)
    ce = -log_p[np.arange(8), target.numpy()] * (x_t.numpy() == MASK)
    want = [ce[:3].sum() / 3, ce[3:].sum() / 5]
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-5)
    assert torch.softmax(pred, -1)[:, MASK].max() == 0


@pytest.mark.parametrize(("t", "dt"), [(0.0, 0.1), (0.5, 0.1), (0.9, 0.05)])
def test_step_reveals_at_rate_dt_over_one_minus_t_with_predicted_types(t, dt):
    batch, flow = _many(DRAWS), MaskedTypeFlow()
    x = torch.full_like(batch.atomic_numbers, MASK)
    logits = torch.full((DRAWS, 101), -1e4)
    logits[:, 8], logits[:, 26] = math.log(0.3), math.log(0.7)
    out = flow.step(x, logits, torch.tensor([t]), dt, batch, torch.Generator().manual_seed(3))
    revealed = out != MASK
    assert _binomial_ok(int(revealed.sum()), DRAWS, dt / (1 - t))
    assert set(out[revealed].tolist()) <= {8, 26}
    assert _binomial_ok(int((out == 26).sum()), int(revealed.sum()), 0.7)


def test_last_step_reveals_every_atom_whatever_the_rounding():
    batch, flow = _many(DRAWS), MaskedTypeFlow()
    x = torch.full_like(batch.atomic_numbers, MASK)
    steps = 7
    t = torch.tensor([(steps - 1) * (1.0 / steps)], dtype=torch.float32)
    logits = torch.zeros((DRAWS, 101))
    out = flow.step(x, flow.project(logits, batch), t, 1.0 / steps, batch, torch.Generator())
    assert (out != MASK).all()


@pytest.mark.parametrize("sampler", ["euler", "heun"])
def test_de_novo_model_generates_every_field(sampler):
    config = Config.model_validate({"task": "dng", "backbone": {"hidden": 16, "layers": 1}})
    model = build_model(config, volume_per_atom=12.0)
    assert set(model.processes) == {"frac_coords", "lattice", "atomic_numbers"}
    template = random_batch((2, 4), seed=3, dtype=torch.float32)
    template = template.replace(atomic_numbers=torch.zeros_like(template.atomic_numbers))
    out, _ = model.sample(template, 3, sampler, torch.Generator().manual_seed(0))
    assert ((out.atomic_numbers >= 1) & (out.atomic_numbers <= 100)).all()
    assert torch.equal(out.num_atoms, template.num_atoms)
    loss, parts = model.loss(random_batch((2, 4), seed=4, dtype=torch.float32), torch.Generator())
    assert {"frac_coords", "lattice", "atomic_numbers"} <= set(parts) and torch.isfinite(loss)


def test_de_novo_needs_the_flow_process():
    config = Config.model_validate({"task": "dng", "process": "diffusion"})
    with pytest.raises(ValueError, match="process: flow"):
        build_model(config, volume_per_atom=12.0)
