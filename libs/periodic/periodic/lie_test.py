"""The GemsDiff Lie-algebra basis."""

import torch

from periodic import (
    ROTATION,
    SHAPE,
    SYMMETRIC,
    VOLUME,
    lie_basis,
    lie_coefficients_to_matrix,
    matrix_to_lie_coefficients,
)


def test_basis_is_frobenius_orthonormal() -> None:
    basis = lie_basis()
    gram = torch.einsum("aij,bij->ab", basis, basis)
    torch.testing.assert_close(gram, torch.eye(9, dtype=torch.float64))


def test_generator_families() -> None:
    basis = lie_basis()
    rotation, shape, vol = basis[ROTATION], basis[SHAPE], basis[VOLUME]
    torch.testing.assert_close(rotation, -rotation.mT)
    torch.testing.assert_close(shape, shape.mT)
    torch.testing.assert_close(shape.diagonal(dim1=-2, dim2=-1).sum(-1), torch.zeros(5).double())
    torch.testing.assert_close(vol[0], torch.eye(3, dtype=torch.float64) / 3**0.5)
    # rotation generators exponentiate to rotations; the volume generator scales isotropically
    rot = torch.linalg.matrix_exp(0.3 * rotation)
    torch.testing.assert_close(rot @ rot.mT, torch.eye(3, dtype=torch.float64).expand(3, 3, 3))


def test_coefficients_roundtrip_and_span() -> None:
    gen = torch.Generator().manual_seed(0)
    matrices = torch.randn(10, 3, 3, dtype=torch.float64, generator=gen)
    every = slice(0, 9)
    coefficients = matrix_to_lie_coefficients(matrices, every)
    torch.testing.assert_close(lie_coefficients_to_matrix(coefficients, every), matrices)
    symmetric = 0.5 * (matrices + matrices.mT)
    sym_coefficients = matrix_to_lie_coefficients(symmetric)
    assert sym_coefficients.shape == (10, 6)
    torch.testing.assert_close(lie_coefficients_to_matrix(sym_coefficients, SYMMETRIC), symmetric)
