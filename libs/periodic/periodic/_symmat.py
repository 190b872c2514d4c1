"""Functions of symmetric 3x3 matrices (exp, log) and the polar decomposition, batched.

``f(S) = V diag(f(lambda)) V^T`` from ``torch.linalg.eigh``. The eigenvector derivative of
``eigh`` is singular for repeated eigenvalues (it divides by ``lambda_i - lambda_j``), so the
backward pass uses the Daleckii-Krein formula instead, which only needs the divided differences

    Gamma_ij = (f(lambda_i) - f(lambda_j)) / (lambda_i - lambda_j)   (f'(lambda_i) when equal),
    dL/dS = V (Gamma o (V^T G V)) V^T,      G = dL/df(S),

written in closed forms that are exact at and near equality (sinh(x)/x for exp, atanh(x)/x for
log). Gradients are therefore finite and correct at ``S = 0`` and ``S = c I``.
"""

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

_SERIES_BELOW = 1e-4  # |x| under which sinh(x)/x and atanh(x)/x use their Taylor series


def _sinhc(x: Tensor) -> Tensor:
    """sinh(x) / x, exact to rounding for all x."""
    small = x.abs() < _SERIES_BELOW
    safe = torch.where(small, torch.ones_like(x), x)
    x2 = x * x
    return torch.where(small, 1.0 + x2 / 6.0 + x2 * x2 / 120.0, torch.sinh(safe) / safe)


def _atanhc(x: Tensor) -> Tensor:
    """atanh(x) / x for |x| < 1, exact to rounding for all x."""
    small = x.abs() < _SERIES_BELOW
    safe = torch.where(small, torch.full_like(x, 0.5), x)
    x2 = x * x
    return torch.where(small, 1.0 + x2 / 3.0 + x2 * x2 / 5.0, torch.atanh(safe) / safe)


def _exp_divided_difference(li: Tensor, lj: Tensor) -> Tensor:
    """(e^li - e^lj) / (li - lj) = e^((li + lj) / 2) sinh(x) / x with x = (li - lj) / 2."""
    return torch.exp(0.5 * (li + lj)) * _sinhc(0.5 * (li - lj))


def _log_divided_difference(li: Tensor, lj: Tensor) -> Tensor:
    """(log li - log lj) / (li - lj) = 2 atanh(x) / (x (li + lj)) with x = (li - lj) / (li + lj)."""
    total = li + lj
    return 2.0 / total * _atanhc((li - lj) / total)


_FUNCTIONS = {
    "exp": (torch.exp, _exp_divided_difference),
    "log": (torch.log, _log_divided_difference),
}


class _SymmetricMatrixFunction(torch.autograd.Function):
    """f(S) for symmetric S (..., 3, 3) with the Daleckii-Krein backward (first order only)."""

    @staticmethod
    def forward(ctx, sym: Tensor, name: str) -> Tensor:
        func, divided_difference = _FUNCTIONS[name]
        eigvals, eigvecs = torch.linalg.eigh(sym)  # (..., 3), (..., 3, 3)
        out = (eigvecs * func(eigvals).unsqueeze(-2)) @ eigvecs.mT
        gamma = divided_difference(eigvals.unsqueeze(-1), eigvals.unsqueeze(-2))  # (..., 3, 3)
        ctx.save_for_backward(eigvecs, gamma)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor) -> tuple[Tensor, None]:
        eigvecs, gamma = ctx.saved_tensors
        inner = eigvecs.mT @ grad_out @ eigvecs
        return eigvecs @ (gamma * inner) @ eigvecs.mT, None


def _symmetrize(matrix: Tensor) -> Tensor:
    return 0.5 * (matrix + matrix.mT)


def sym_expm(sym: Tensor) -> Tensor:
    """Matrix exponential of symmetric matrices ``(..., 3, 3)`` (input is symmetrised first).

    The result is symmetric positive definite. Differentiable once (Daleckii-Krein backward).
    """
    return _SymmetricMatrixFunction.apply(_symmetrize(sym), "exp")


def sym_logm(spd: Tensor) -> Tensor:
    """Principal matrix logarithm of symmetric positive definite matrices ``(..., 3, 3)``.

    The input is symmetrised first; non-positive eigenvalues give NaN. Differentiable once.
    """
    return _SymmetricMatrixFunction.apply(_symmetrize(spd), "log")


def polar_log_stretch(deformation: Tensor) -> Tensor:
    """``log U = 0.5 logm(F F^T)`` for the left polar decomposition ``F = U R``, ``(..., 3, 3)``.

    This is the symmetric lattice velocity of the flow-matching path (SCIENCE.md 4.1): no explicit
    polar decomposition is needed because ``F F^T = U R R^T U = U^2``.
    """
    return 0.5 * sym_logm(deformation @ deformation.mT)


def polar_decomposition(deformation: Tensor) -> tuple[Tensor, Tensor]:
    """Left polar decomposition ``F = U R`` of invertible matrices ``F (..., 3, 3)``.

    Returns ``U`` symmetric positive definite (``U = expm(0.5 logm(F F^T))``) and ``R = U^-1 F``
    orthogonal (a rotation when ``det F > 0``, else a rotation times a reflection).
    """
    stretch = sym_expm(polar_log_stretch(deformation))
    return stretch, torch.linalg.solve(stretch, deformation)
