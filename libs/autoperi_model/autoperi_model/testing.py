"""Property test kit: numerical proofs of the symmetries of crystal models (SCIENCE.md section 3).

A model under test is a function `fn(batch) -> {field: tensor}` whose fields are declared with a
`FieldKind`: per-atom invariant (types, energies), per-atom fractional vector (coordinate fields:
transform like X, i.e. `v -> v M^-1` under a change of basis `L -> M L`, invariant under O(3)), or
per-crystal Cartesian symmetric matrix (lattice fields: `S -> Q S Q^T` under `L -> L Q^T`, invariant
under changes of basis). `assert_equivariant` checks one group action; `EquivarianceSuite` is a
pytest mixin that checks all of them, so a model's test class only supplies the model.

`tampered_checkpoint` writes the checkpoint an attacker would: weights replaced by a pickle that
runs code when unpickled, manifest re-signed, for the tests of every loader's refusal.
"""

from __future__ import annotations

import enum
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from autoperi_model._batch import CrystalBatch

ModelFn = Callable[[CrystalBatch], Mapping[str, Tensor]]
TOLERANCE = {torch.float64: 1e-9, torch.float32: 1e-4}
ACTIONS = ("rotation", "reflection", "translation", "permutation", "basis", "image")


class FieldKind(enum.Enum):
    ATOM_INVARIANT = "atom_invariant"  # (N, ...)
    ATOM_FRAC_VECTOR = "atom_frac_vector"  # (N, 3)
    CRYSTAL_CART_SYMMETRIC = "crystal_cart_symmetric"  # (B, 3, 3)
    CRYSTAL_INVARIANT = "crystal_invariant"  # (B, ...)


def random_batch(
    sizes: tuple[int, ...] = (1, 3, 5), seed: int = 0, dtype: torch.dtype = torch.float64
) -> CrystalBatch:
    """Random crystals of the given sizes: skewed cells near 12 A^3 per atom, types in 1..90."""
    rng = np.random.default_rng(seed)
    lattices, fracs, types = [], [], []
    for n in sizes:
        lat = np.eye(3) + 0.25 * rng.standard_normal((3, 3))
        lat *= (12.0 * n / abs(np.linalg.det(lat))) ** (1 / 3)
        lattices.append(lat)
        fracs.append(rng.random((n, 3)))
        types.append(rng.integers(1, 91, n))
    return CrystalBatch.from_arrays(lattices, fracs, types, dtype)


def random_orthogonal(proper: bool, seed: int, dtype: torch.dtype) -> Tensor:
    """A random rotation (proper) or rotation-reflection (det -1), (3, 3)."""
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((3, 3)))
    q = q * np.sign(np.diag(r))
    if (np.linalg.det(q) > 0) != proper:
        q[:, 0] = -q[:, 0]
    return torch.as_tensor(q, dtype=dtype)


def random_unimodular(seed: int, max_entry: int = 3) -> np.ndarray:
    """A random integer matrix with det +-1 and entries up to `max_entry` in magnitude, (3, 3)."""
    rng = np.random.default_rng(seed)
    while True:
        m = np.eye(3, dtype=np.int64)
        for _ in range(4):
            i, j = rng.choice(3, 2, replace=False)
            m[i] += rng.integers(-1, 2) * m[j]
        if rng.random() < 0.5:
            m[rng.integers(3)] *= -1
        if 0 < np.abs(m).max() <= max_entry and abs(round(np.linalg.det(m))) == 1:
            return m


def _per_atom_matrix(mats: Tensor, batch: CrystalBatch) -> Tensor:
    return mats.index_select(0, batch.batch)


def act(action: str, batch: CrystalBatch, seed: int) -> tuple[CrystalBatch, dict]:
    """Apply a group action to a batch; returns the new batch and what the action was."""
    dtype, gen = batch.lattice.dtype, torch.Generator().manual_seed(seed)
    if action in ("rotation", "reflection"):
        q = random_orthogonal(action == "rotation", seed, dtype)
        return batch.replace(lattice=batch.lattice @ q.T), {"q": q}
    if action == "translation":
        shift = torch.rand(batch.num_crystals, 3, generator=gen, dtype=dtype)
        return batch.replace(frac_coords=(batch.frac_coords + shift[batch.batch]) % 1.0), {}
    if action == "permutation":
        perm = _within_crystal_permutation(batch, gen)
        new = batch.frac_coords.index_select(0, perm)
        return batch.replace(frac_coords=new, atomic_numbers=batch.atomic_numbers[perm]), {
            "perm": perm
        }
    if action == "basis":
        mats = [
            torch.as_tensor(random_unimodular(seed + b), dtype=dtype)
            for b in range(len(batch.num_atoms))
        ]
        m = torch.stack(mats)  # (B, 3, 3)
        m_inv = torch.linalg.inv(m)
        frac = torch.einsum("ni,nij->nj", batch.frac_coords, _per_atom_matrix(m_inv, batch)) % 1.0
        return batch.replace(lattice=m @ batch.lattice, frac_coords=frac), {"m_inv": m_inv}
    if action == "image":
        k = torch.randint(-2, 3, batch.frac_coords.shape, generator=gen).to(dtype)
        return batch.replace(frac_coords=batch.frac_coords + k), {}
    raise ValueError(f"unknown action {action!r}; known: {ACTIONS}")


def _within_crystal_permutation(batch: CrystalBatch, gen: torch.Generator) -> Tensor:
    starts = torch.cumsum(batch.num_atoms, 0) - batch.num_atoms
    parts = [
        s + torch.randperm(int(n), generator=gen)
        for s, n in zip(starts, batch.num_atoms, strict=True)
    ]
    return torch.cat(parts)


def expected(
    kind: FieldKind, value: Tensor, action: str, info: dict, batch: CrystalBatch
) -> Tensor:
    """What an output of `kind` must become under `action`."""
    if action == "permutation" and kind in (FieldKind.ATOM_INVARIANT, FieldKind.ATOM_FRAC_VECTOR):
        return value.index_select(0, info["perm"])
    if kind is FieldKind.CRYSTAL_CART_SYMMETRIC and "q" in info:
        return info["q"] @ value @ info["q"].T
    if kind is FieldKind.ATOM_FRAC_VECTOR and action == "basis":
        return torch.einsum("ni,nij->nj", value, _per_atom_matrix(info["m_inv"], batch))
    return value


def _max_error(a: Tensor, b: Tensor) -> float:
    scale = max(1.0, float(b.abs().max())) if b.numel() else 1.0
    return float((a - b).abs().max()) / scale if a.numel() else 0.0


def assert_equivariant(
    fn: ModelFn, kinds: Mapping[str, FieldKind], batch: CrystalBatch, action: str, seed: int = 0
) -> float:
    """Assert `fn(g . batch) == g . fn(batch)` for the action; returns the max relative error."""
    with torch.no_grad():
        before = fn(batch)
        moved, info = act(action, batch, seed)
        after = fn(moved)
    tol = TOLERANCE[batch.lattice.dtype]
    worst = 0.0
    for name, kind in kinds.items():
        err = _max_error(after[name], expected(kind, before[name], action, info, batch))
        assert err < tol, f"{name} is not {action}-equivariant: error {err:.3g} >= {tol:g}"
        worst = max(worst, err)
    return worst


def assert_batch_equals_single(
    fn: ModelFn, kinds: Mapping[str, FieldKind], batch: CrystalBatch
) -> float:
    """Assert that evaluating a batch equals evaluating each crystal alone."""
    with torch.no_grad():
        whole = fn(batch)
        singles = [fn(_one(batch, b)) for b in range(batch.num_crystals)]
    tol, worst = TOLERANCE[batch.lattice.dtype], 0.0
    for name, kind in kinds.items():
        joined = torch.cat([s[name] for s in singles])
        err = _max_error(whole[name], joined)
        assert err < tol, f"{name}: batch != single crystals (error {err:.3g}, kind {kind.value})"
        worst = max(worst, err)
    return worst


def _one(batch: CrystalBatch, b: int) -> CrystalBatch:
    mask = batch.batch == b
    return CrystalBatch(
        lattice=batch.lattice[b : b + 1],
        frac_coords=batch.frac_coords[mask],
        atomic_numbers=batch.atomic_numbers[mask],
        batch=torch.zeros(int(mask.sum()), dtype=torch.long),
        num_atoms=batch.num_atoms[b : b + 1],
    )


class EquivarianceSuite:
    """Pytest mixin: subclasses define `model_fn(dtype) -> (fn, kinds)`; every action is tested
    in float64 (< 1e-9) and float32 (< 1e-4) on random crystals of 1, 3 and 5 atoms.
    """

    sizes: tuple[int, ...] = (1, 3, 5)

    def model_fn(self, dtype: torch.dtype) -> tuple[ModelFn, Mapping[str, FieldKind]]:
        raise NotImplementedError

    def _check(self, action: str, dtype: torch.dtype) -> None:
        fn, kinds = self.model_fn(dtype)
        for seed in range(2):
            batch = random_batch(self.sizes, seed=seed, dtype=dtype)
            assert_equivariant(fn, kinds, batch, action, seed=seed)

    def test_equivariance_float64(self) -> None:
        for action in ACTIONS:
            self._check(action, torch.float64)

    def test_equivariance_float32(self) -> None:
        for action in ACTIONS:
            self._check(action, torch.float32)

    def test_batch_equals_single(self) -> None:
        for dtype in (torch.float64, torch.float32):
            fn, kinds = self.model_fn(dtype)
            assert_batch_equals_single(fn, kinds, random_batch(self.sizes, seed=3, dtype=dtype))


class _MakeDirWhenUnpickled:
    """Unpickles as `os.mkdir(path)`: a harmless stand-in for code a tampered file would run."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return os.mkdir, (self.path,)


def tampered_checkpoint(source: Path, dest: Path) -> Path:
    """A copy of checkpoint directory `source` at `dest` whose weights file (model.pt) is a
    `torch.save` pickle that creates the directory `dest / "unpickled"` when unpickled, with the
    manifest's weights_sha256 re-signed to match: only the loader's refusal stops it (the
    directory must not exist after a load attempt). Returns `dest`."""
    shutil.copytree(source, dest)
    torch.save({"weight": _MakeDirWhenUnpickled(dest / "unpickled")}, dest / "model.pt")
    manifest = json.loads((dest / "manifest.json").read_text())
    manifest["weights_sha256"] = hashlib.sha256((dest / "model.pt").read_bytes()).hexdigest()
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return dest
