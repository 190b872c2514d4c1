"""The symmetry kit itself: it must reject functions that break each symmetry."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from periodic import keys

from autoperi_model.testing import (
    FieldKind,
    assert_equivariant,
    random_batch,
    random_orthogonal,
    random_unimodular,
)


def _lattice_rows(batch):
    """Not basis-invariant: uses the rows of L (fine under rotations as a Cartesian field)."""
    return {keys.LATTICE: batch.lattice.mT @ batch.lattice}


def _raw_coordinates(batch):
    """Not translation- or image-invariant: the coordinates themselves as a vector field."""
    return {keys.FRAC_COORDS: batch.frac_coords.clone()}


@pytest.mark.parametrize(
    ("fn", "kind", "action"),
    [
        (_lattice_rows, FieldKind.CRYSTAL_CART_SYMMETRIC, "basis"),
        (_raw_coordinates, FieldKind.ATOM_FRAC_VECTOR, "translation"),
        (_raw_coordinates, FieldKind.ATOM_FRAC_VECTOR, "image"),
    ],
)
def test_kit_rejects_broken_symmetries(fn, kind, action):
    batch = random_batch((2, 3), seed=0)
    name = next(iter(fn(batch)))
    with pytest.raises(AssertionError, match=action):
        assert_equivariant(fn, {name: kind}, batch, action)


def test_kit_accepts_the_gram_invariant():
    batch = random_batch((2, 3), seed=1)
    fn = _lattice_rows
    assert assert_equivariant(
        fn, {keys.LATTICE: FieldKind.CRYSTAL_CART_SYMMETRIC}, batch, "rotation"
    )


def test_group_elements():
    for seed in range(20):
        m = random_unimodular(seed)
        assert abs(round(np.linalg.det(m))) == 1 and np.abs(m).max() <= 3
    q = random_orthogonal(False, 0, torch.float64)
    assert torch.allclose(q @ q.T, torch.eye(3, dtype=torch.float64))
    assert torch.linalg.det(q) < 0
