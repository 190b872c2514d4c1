"""Symmetric matrix exp/log and the polar decomposition against scipy, with gradients."""

import numpy as np
import pytest
import scipy.linalg
import torch

from periodic import polar_decomposition, polar_log_stretch, sym_expm, sym_logm


def _random_symmetric(rng: np.random.Generator, count: int, scale: float = 1.0) -> np.ndarray:
    a = rng.normal(scale=scale, size=(count, 3, 3))
    return 0.5 * (a + a.transpose(0, 2, 1))


def _with_eigenvalues(rng: np.random.Generator, eigenvalues: list[float]) -> torch.Tensor:
    q = np.linalg.qr(rng.normal(size=(3, 3)))[0]
    return torch.tensor(q @ np.diag(eigenvalues) @ q.T)


def _degenerate_symmetric() -> list[torch.Tensor]:
    rng = np.random.default_rng(11)
    return [
        torch.zeros(3, 3, dtype=torch.float64),
        0.7 * torch.eye(3, dtype=torch.float64),
        _with_eigenvalues(rng, [0.3, 0.3, -1.2]),
        _with_eigenvalues(rng, [0.5, 0.5 + 1e-9, 0.5 - 1e-9]),
    ]


def _degenerate_spd() -> list[torch.Tensor]:
    rng = np.random.default_rng(12)
    return [
        torch.eye(3, dtype=torch.float64),
        2.5 * torch.eye(3, dtype=torch.float64),
        _with_eigenvalues(rng, [2.0, 2.0, 0.4]),
        _with_eigenvalues(rng, [1.3, 1.3 + 1e-9, 1.3 - 2e-9]),
    ]


def test_expm_matches_scipy() -> None:
    sym = _random_symmetric(np.random.default_rng(0), 100)
    ours = sym_expm(torch.tensor(sym)).numpy()
    ref = np.stack([scipy.linalg.expm(s) for s in sym])
    np.testing.assert_allclose(ours, ref, atol=1e-10, rtol=1e-10)


def test_logm_matches_scipy() -> None:
    spd = sym_expm(torch.tensor(_random_symmetric(np.random.default_rng(1), 100))).numpy()
    ours = sym_logm(torch.tensor(spd)).numpy()
    ref = np.stack([scipy.linalg.logm(s).real for s in spd])
    np.testing.assert_allclose(ours, ref, atol=1e-10, rtol=1e-10)


def test_expm_logm_on_degenerate_matrices_match_scipy() -> None:
    for sym in _degenerate_symmetric():
        np.testing.assert_allclose(
            sym_expm(sym).numpy(), scipy.linalg.expm(sym.numpy()), atol=1e-12
        )
    for spd in _degenerate_spd():
        ref = scipy.linalg.logm(spd.numpy()).real
        np.testing.assert_allclose(sym_logm(spd).numpy(), ref, atol=1e-12)


@pytest.mark.parametrize("index", range(4))
def test_expm_gradcheck_at_repeated_eigenvalues(index: int) -> None:
    sym = _degenerate_symmetric()[index].clone().requires_grad_()
    assert torch.autograd.gradcheck(sym_expm, (sym,))


@pytest.mark.parametrize("index", range(4))
def test_logm_gradcheck_at_repeated_eigenvalues(index: int) -> None:
    spd = _degenerate_spd()[index].clone().requires_grad_()
    assert torch.autograd.gradcheck(sym_logm, (spd,))


def test_gradcheck_batched_generic() -> None:
    sym = torch.tensor(_random_symmetric(np.random.default_rng(2), 4), requires_grad=True)
    assert torch.autograd.gradcheck(sym_expm, (sym,))
    spd = sym_expm(sym.detach()).requires_grad_()
    assert torch.autograd.gradcheck(sym_logm, (spd,))


def test_gradient_at_multiples_of_identity_is_exact() -> None:
    """At S = c I every divided difference is e^c, so d sum(expm(S)) / dS = e^c (all ones)."""
    for c in (0.0, 0.8):
        sym = (c * torch.eye(3, dtype=torch.float64)).requires_grad_()
        sym_expm(sym).sum().backward()
        torch.testing.assert_close(sym.grad, np.exp(c) * torch.ones(3, 3, dtype=torch.float64))


def test_polar_decomposition_matches_scipy() -> None:
    rng = np.random.default_rng(4)
    mats = rng.normal(size=(50, 3, 3)) + 2.0 * np.eye(3)
    stretch, rotation = polar_decomposition(torch.tensor(mats))
    for f, u, r in zip(mats, stretch.numpy(), rotation.numpy(), strict=True):
        ref_r, ref_u = scipy.linalg.polar(f, side="left")  # f = ref_u @ ref_r
        np.testing.assert_allclose(u, ref_u, atol=1e-10)
        np.testing.assert_allclose(r, ref_r, atol=1e-10)
    log_u = polar_log_stretch(torch.tensor(mats))
    np.testing.assert_allclose(sym_expm(log_u).numpy(), stretch.numpy(), atol=1e-10)


def test_polar_gradcheck() -> None:
    f = torch.tensor(np.random.default_rng(6).normal(size=(2, 3, 3)) + 2 * np.eye(3))
    assert torch.autograd.gradcheck(polar_log_stretch, (f.requires_grad_(),))
    rotation = torch.tensor(scipy.linalg.expm(np.array([[0, 1.0, 0], [-1.0, 0, 0], [0, 0, 0]])))
    assert torch.autograd.gradcheck(polar_log_stretch, (rotation.requires_grad_(),))
