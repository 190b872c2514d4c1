"""Lattice geometry against pymatgen."""

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice

from periodic import (
    cart_to_frac,
    cell_heights,
    frac_to_cart,
    lattice_to_params,
    params_to_lattice,
    volume,
)


def _random_parameters(rng: np.random.Generator, count: int) -> np.ndarray:
    """Valid (a, b, c, alpha, beta, gamma) rows with angles in [20, 160] degrees."""
    rows = []
    while len(rows) < count:
        lengths, angles = rng.uniform(1.0, 20.0, 3), rng.uniform(20.0, 160.0, 3)
        cos = np.cos(np.radians(angles))
        gram = np.array([[1, cos[2], cos[1]], [cos[2], 1, cos[0]], [cos[1], cos[0], 1]])
        if np.linalg.det(gram) > 1e-3:
            rows.append(np.concatenate([lengths, angles]))
    return np.array(rows)


@pytest.fixture(scope="module")
def parameters() -> np.ndarray:
    return _random_parameters(np.random.default_rng(7), 200)


def test_params_to_lattice_matches_pymatgen(parameters: np.ndarray) -> None:
    ours = params_to_lattice(torch.tensor(parameters[:, :3]), torch.tensor(parameters[:, 3:]))
    ref = np.stack([Lattice.from_parameters(*row).matrix for row in parameters])
    np.testing.assert_allclose(ours.numpy(), ref, atol=1e-10)


def test_lattice_to_params_matches_pymatgen(parameters: np.ndarray) -> None:
    rng = np.random.default_rng(3)
    mats = np.stack([Lattice.from_parameters(*row).matrix for row in parameters])
    mats = mats @ np.linalg.qr(rng.normal(size=(len(mats), 3, 3)))[0]  # arbitrary orientation
    lengths, angles = lattice_to_params(torch.tensor(mats))
    ref = [Lattice(m) for m in mats]
    np.testing.assert_allclose(lengths.numpy(), [lat.abc for lat in ref], rtol=1e-12)
    np.testing.assert_allclose(angles.numpy(), [lat.angles for lat in ref], atol=1e-9)


def test_volume_and_heights_match_pymatgen(parameters: np.ndarray) -> None:
    mats = np.stack([Lattice.from_parameters(*row).matrix for row in parameters])
    ref = [Lattice(m) for m in mats]
    np.testing.assert_allclose(volume(torch.tensor(mats)).numpy(), [x.volume for x in ref])
    spacings = [[x.d_hkl(hkl) for hkl in ((1, 0, 0), (0, 1, 0), (0, 0, 1))] for x in ref]
    np.testing.assert_allclose(cell_heights(torch.tensor(mats)).numpy(), spacings, rtol=1e-10)


def test_frac_cart_roundtrip_batched(parameters: np.ndarray) -> None:
    rng = np.random.default_rng(5)
    mats = np.stack([Lattice.from_parameters(*row).matrix for row in parameters[:10]])
    num_atoms = rng.integers(1, 6, size=10)
    batch = torch.repeat_interleave(torch.arange(10), torch.tensor(num_atoms))
    frac = rng.uniform(-1, 2, size=(int(num_atoms.sum()), 3))
    cart = frac_to_cart(torch.tensor(frac), torch.tensor(mats), batch)
    ref = np.stack(
        [Lattice(mats[b]).get_cartesian_coords(f) for f, b in zip(frac, batch, strict=True)]
    )
    np.testing.assert_allclose(cart.numpy(), ref, atol=1e-12)
    back = cart_to_frac(cart, torch.tensor(mats), batch)
    np.testing.assert_allclose(back.numpy(), frac, atol=1e-12)


def test_single_lattice_without_batch() -> None:
    lat = torch.tensor([[2.0, 0, 0], [1.0, 3.0, 0], [0, 0, 4.0]], dtype=torch.float64)
    frac = torch.tensor([[0.5, 0.5, 0.5]], dtype=torch.float64)
    np.testing.assert_allclose(frac_to_cart(frac, lat).numpy(), [[1.5, 1.5, 2.0]])
    with pytest.raises(ValueError, match="batch index"):
        frac_to_cart(frac, lat.unsqueeze(0))


def test_params_roundtrip_is_differentiable(parameters: np.ndarray) -> None:
    lengths = torch.tensor(parameters[:5, :3], requires_grad=True)
    angles = torch.tensor(parameters[:5, 3:], requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda a, b: lattice_to_params(params_to_lattice(a, b)), (lengths, angles)
    )
    back_lengths, back_angles = lattice_to_params(params_to_lattice(lengths, angles))
    np.testing.assert_allclose(back_lengths.detach().numpy(), parameters[:5, :3], rtol=1e-12)
    np.testing.assert_allclose(back_angles.detach().numpy(), parameters[:5, 3:], atol=1e-9)
