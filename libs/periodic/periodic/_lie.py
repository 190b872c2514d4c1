"""The Lie-algebra basis of GL3 used by GemsDiff for lattice diffusion.

Nine 3x3 generators, orthonormal under the Frobenius inner product ``<A, B> = tr(A^T B)``:

- indices 0-2 (ROTATION): antisymmetric ``(e_ij - e_ji) / sqrt(2)`` for (i, j) = (1, 2), (0, 2),
  (0, 1); they generate rotations, a gauge for crystals;
- indices 3-7 (SHAPE): traceless symmetric ``(e_00 - e_11) / sqrt(2)``,
  ``(e_00 + e_11 - 2 e_22) / sqrt(6)`` and ``(e_ij + e_ji) / sqrt(2)`` for the three off-diagonals;
- index 8 (VOLUME): ``I / sqrt(3)``, isotropic scaling.

A lattice deformation is ``L = L_ref expm(sum_i c_i pi_i)`` with coefficients c over the symmetric
part (indices 3-8) in GemsDiff.
"""

import math

import torch
from torch import Tensor

ROTATION = slice(0, 3)
SHAPE = slice(3, 8)
VOLUME = slice(8, 9)
SYMMETRIC = slice(3, 9)

_OFF_DIAGONALS = ((1, 2), (0, 2), (0, 1))


def lie_basis(dtype: torch.dtype = torch.float64, device: torch.device | None = None) -> Tensor:
    """The nine generators as a tensor ``(9, 3, 3)``, ordered rotation, shape, volume."""
    basis = torch.zeros(9, 3, 3, dtype=dtype, device=device)
    r2, r6 = math.sqrt(2.0), math.sqrt(6.0)
    for n, (i, j) in enumerate(_OFF_DIAGONALS):
        basis[n, i, j], basis[n, j, i] = 1.0 / r2, -1.0 / r2
        basis[5 + n, i, j] = basis[5 + n, j, i] = 1.0 / r2
    basis[3, 0, 0], basis[3, 1, 1] = 1.0 / r2, -1.0 / r2
    basis[4, 0, 0] = basis[4, 1, 1] = 1.0 / r6
    basis[4, 2, 2] = -2.0 / r6
    basis[8] = torch.eye(3, dtype=dtype, device=device) / math.sqrt(3.0)
    return basis


def lie_coefficients_to_matrix(coefficients: Tensor, generators: slice = SYMMETRIC) -> Tensor:
    """``sum_i c_i pi_i``: coefficients ``(..., k)`` over ``generators`` -> ``(..., 3, 3)``."""
    basis = lie_basis(coefficients.dtype, coefficients.device)[generators]
    return torch.einsum("...k,kij->...ij", coefficients, basis)


def matrix_to_lie_coefficients(matrix: Tensor, generators: slice = SYMMETRIC) -> Tensor:
    """Frobenius projections ``<A, pi_i>`` of matrices ``(..., 3, 3)`` onto ``generators``."""
    basis = lie_basis(matrix.dtype, matrix.device)[generators]
    return torch.einsum("...ij,kij->...k", matrix, basis)
