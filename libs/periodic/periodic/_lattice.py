"""Lattice geometry: parameters, fractional <-> Cartesian coordinates, volumes and cell heights.

Conventions (SCIENCE.md section 1): a lattice ``L`` has the lattice vectors a, b, c as rows, in
Angstrom; Cartesian positions are ``R = X @ L``. Every function is batched over leading dimensions
and differentiable.
"""

import torch
from torch import Tensor


def lattice_to_params(lattice: Tensor) -> tuple[Tensor, Tensor]:
    """Lengths (a, b, c) and angles (alpha, beta, gamma) in degrees of lattices ``(..., 3, 3)``.

    alpha is the angle between b and c, beta between a and c, gamma between a and b. Angles use
    ``atan2(|u x v|, u . v)``, which is accurate and differentiable at every non-degenerate cell.
    Returns ``lengths (..., 3)`` and ``angles (..., 3)``.
    """
    a, b, c = lattice.unbind(-2)
    lengths = torch.linalg.vector_norm(lattice, dim=-1)
    pairs = ((b, c), (a, c), (a, b))
    angles = [torch.atan2(torch.linalg.cross(u, v).norm(dim=-1), (u * v).sum(-1)) for u, v in pairs]
    return lengths, torch.rad2deg(torch.stack(angles, dim=-1))


def params_to_lattice(lengths: Tensor, angles: Tensor) -> Tensor:
    """Lattice ``(..., 3, 3)`` from lengths ``(..., 3)`` (A) and angles ``(..., 3)`` (degrees).

    The orientation is pymatgen's ``Lattice.from_parameters`` (also CDVAE's and DiffCSP's):
    c lies along z, a in the xz plane::

        a = (a sin(beta), 0, a cos(beta))
        b = (-b sin(alpha) cos(gamma*), b sin(alpha) sin(gamma*), b cos(alpha))
        c = (0, 0, c)

    with ``cos(gamma*) = (cos(alpha) cos(beta) - cos(gamma)) / (sin(alpha) sin(beta))``.
    """
    alpha, beta, gamma = torch.deg2rad(angles).unbind(-1)
    cos_a, cos_b, cos_g = torch.cos(alpha), torch.cos(beta), torch.cos(gamma)
    sin_a, sin_b = torch.sin(alpha), torch.sin(beta)
    cos_gs = ((cos_a * cos_b - cos_g) / (sin_a * sin_b)).clamp(-1.0, 1.0)
    sin_gs = torch.sqrt((1.0 - cos_gs * cos_gs).clamp_min(0.0))
    zero = torch.zeros_like(cos_a)
    len_a, len_b, len_c = lengths.unbind(-1)
    vec_a = torch.stack([len_a * sin_b, zero, len_a * cos_b], dim=-1)
    vec_b = torch.stack([-len_b * sin_a * cos_gs, len_b * sin_a * sin_gs, len_b * cos_a], dim=-1)
    vec_c = torch.stack([zero, zero, len_c], dim=-1)
    return torch.stack([vec_a, vec_b, vec_c], dim=-2)


def volume(lattice: Tensor) -> Tensor:
    """Cell volume ``|det L|`` (A^3) of lattices ``(..., 3, 3)``; returns ``(...)``."""
    return torch.linalg.det(lattice).abs()


def cell_heights(lattice: Tensor) -> Tensor:
    """Distances between opposite faces of the cell, ``(..., 3)`` from ``(..., 3, 3)``.

    ``h_a = V / |b x c|`` (likewise ``h_b = V / |c x a|``, ``h_c = V / |a x b|``): a sphere of
    radius r crosses at most ``ceil(r / h_a)`` cells along a on each side.
    """
    a, b, c = lattice.unbind(-2)
    areas = torch.stack(
        [torch.linalg.cross(b, c), torch.linalg.cross(c, a), torch.linalg.cross(a, b)], dim=-2
    ).norm(dim=-1)
    return volume(lattice).unsqueeze(-1) / areas


def per_atom_lattice(lattice: Tensor, batch: Tensor | None) -> Tensor:
    """The lattice of each atom's crystal: ``(N, 3, 3)`` from ``(B, 3, 3)`` and ``batch (N,)``.

    With ``batch=None`` the lattice must be a single ``(3, 3)`` matrix and is returned as is.
    """
    if batch is None:
        if lattice.shape != (3, 3):
            raise ValueError(
                f"a batch index is needed for lattices of shape {tuple(lattice.shape)}"
            )
        return lattice
    return lattice.index_select(0, batch)


def frac_to_cart(frac_coords: Tensor, lattice: Tensor, batch: Tensor | None = None) -> Tensor:
    """Cartesian positions ``R = X @ L`` per crystal: ``(N, 3)``.

    ``frac_coords (N, 3)``; ``lattice (B, 3, 3)`` with ``batch (N,)``, or one ``(3, 3)`` lattice.
    """
    lat = per_atom_lattice(lattice, batch)
    if lat.dim() == 2:
        return frac_coords @ lat
    return torch.bmm(frac_coords.unsqueeze(1), lat).squeeze(1)


def cart_to_frac(cart_coords: Tensor, lattice: Tensor, batch: Tensor | None = None) -> Tensor:
    """Fractional coordinates ``X = R @ L^-1`` per crystal: ``(N, 3)`` (inverse of frac_to_cart)."""
    return frac_to_cart(cart_coords, torch.linalg.inv(lattice), batch)
