"""Fixtures of the model tests: a shrunk config and synthetic perovskite-like training data."""

from __future__ import annotations

import numpy as np
import pytest

from autoperi_model._batch import CrystalBatch, CrystalTable
from autoperi_model._config import BackboneConfig, Config
from autoperi_model._train import TrainingData

IDEAL_ABX3 = np.array(
    [[0.5, 0.5, 0.5], [0.0, 0.0, 0.0], [0.5, 0.0, 0.0], [0.0, 0.5, 0.0], [0.0, 0.0, 0.5]]
)


def perovskites(n: int, seed: int) -> CrystalTable:
    """`n` cubic ABX3 cells (a in [3.8, 4.2] A) with small random displacements."""
    rng = np.random.default_rng(seed)
    lattices = [np.eye(3) * rng.uniform(3.8, 4.2) for _ in range(n)]
    fracs = [(IDEAL_ABX3 + 0.01 * rng.standard_normal((5, 3))) % 1.0 for _ in range(n)]
    types = [np.array([rng.choice([38, 56]), rng.choice([22, 40]), 8, 8, 8]) for _ in range(n)]
    return CrystalTable.from_batch(CrystalBatch.from_arrays(lattices, fracs, types))


@pytest.fixture()
def tiny_config() -> Config:
    backbone = BackboneConfig(
        hidden=32, layers=2, num_rbf=8, time_dim=8, cutoff=5.0, max_neighbors=12
    )
    return Config(backbone=backbone).updated(
        train={
            "batch_size": 32,
            "lr": 3e-3,
            "warmup_steps": 5,
            "max_steps": 40,
            "checkpoint_every_steps": 20,
            "log_every_steps": 10,
            "progress": False,
        }
    )


@pytest.fixture(scope="session")
def tiny_data() -> TrainingData:
    return TrainingData(perovskites(256, 0), perovskites(64, 1), version="synthetic")
