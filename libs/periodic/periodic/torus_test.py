"""The flat torus: wrap, logmap, expmap."""

import torch

from periodic import torus_expmap, torus_logmap, wrap, wrap_delta


def test_wrap_lands_in_unit_interval_even_for_tiny_negatives() -> None:
    x = torch.tensor([-1e-17, -0.0, 1.0, 2.5, -3.25, 0.999999999], dtype=torch.float64)
    y = wrap(x)
    assert bool(((y >= 0) & (y < 1)).all())
    expected = torch.tensor([0.0, 0.0, 0.0, 0.5, 0.75, 0.999999999], dtype=torch.float64)
    torch.testing.assert_close(y, expected)


def test_logmap_is_the_shortest_displacement() -> None:
    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(1000, 3, generator=gen), torch.rand(1000, 3, generator=gen)
    u = torus_logmap(x, y)
    assert bool((u.abs() <= 0.5).all())
    shifts = torch.arange(-2, 3, dtype=x.dtype)
    candidates = (y - x).unsqueeze(-1) + shifts  # (1000, 3, 5)
    torch.testing.assert_close(u.abs(), candidates.abs().min(-1).values)
    torch.testing.assert_close(torus_expmap(x, u), wrap(y), atol=1e-6, rtol=0)


def test_wrap_delta_range_and_gradient() -> None:
    d = torch.linspace(-3, 3, 101, dtype=torch.float64, requires_grad=True)
    w = wrap_delta(d)
    assert bool((w.abs() <= 0.5).all())
    w.sum().backward()
    torch.testing.assert_close(d.grad, torch.ones_like(d))


def test_expmap_gradient_is_identity() -> None:
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(4, 3, dtype=torch.float64, generator=gen).requires_grad_()
    u = torch.randn(4, 3, dtype=torch.float64, generator=gen).requires_grad_()
    assert torch.autograd.gradcheck(torus_expmap, (x, u))
