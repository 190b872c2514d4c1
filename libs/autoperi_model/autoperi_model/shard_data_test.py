"""Training data from featurised shards equals the tables the crystals give directly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from featurize import FeaturizerConfig, build_shard, load_shard, save_shard
from periodic import keys
from xtal import Crystal

from autoperi_model._shard_data import table_from_shards
from autoperi_model._train import TrainingData, train
from autoperi_model.conftest import perovskites


def _crystals(table) -> list[Crystal]:
    batch = table.gather(torch.arange(len(table)))
    return [Crystal(a.lattice, a.frac_coords, a.atomic_numbers) for a in batch.arrays()]


def _shards(crystals, tmp_path, size=10):
    paths = []
    for i in range(0, len(crystals), size):
        chunk = crystals[i : i + size]
        shard = build_shard(chunk, [c.content_hash() for c in chunk], FeaturizerConfig())
        save_shard(shard, tmp_path / f"s{i}.pt")
        paths.append(tmp_path / f"s{i}.pt")
    return [load_shard(p) for p in paths]


def test_table_from_shards_keeps_every_crystal_in_order(tmp_path):
    crystals = _crystals(perovskites(25, 3))
    table = table_from_shards(_shards(crystals, tmp_path))
    assert len(table) == 25 and table.lattice.dtype == torch.float64
    for crystal, (lat, z, frac) in zip(
        crystals, table.gather(torch.arange(25)).arrays(), strict=True
    ):
        np.testing.assert_allclose(lat, crystal.lattice, atol=1e-12)
        np.testing.assert_allclose(frac, crystal.frac_coords, atol=1e-12)
        np.testing.assert_array_equal(z, crystal.atomic_numbers)
    assert len(table_from_shards([])) == 0


def test_bad_shards_are_named(tmp_path):
    [shard] = _shards(_crystals(perovskites(4, 0)), tmp_path)
    with pytest.raises(ValueError, match="shard 0 lacks tensor field"):
        table_from_shards([{k: v for k, v in shard.items() if k != keys.LATTICE}])
    broken = {**shard, keys.NUM_ATOMS: shard[keys.NUM_ATOMS] + 1}
    with pytest.raises(ValueError, match="inconsistent"):
        table_from_shards([broken])


def test_shard_data_trains_without_validation_split(tiny_config, tmp_path):
    shards = _shards(_crystals(perovskites(64, 5)), tmp_path, size=32)
    data = TrainingData.from_shards(shards, [], version="shards")
    seen = []
    config = tiny_config.updated(
        train={"max_steps": 4, "checkpoint_every_steps": 2, "log_every_steps": 2}
    )
    train(config, data, tmp_path / "ck", checkpoint_callbacks=[lambda *a: seen.append(a)])
    assert [(step, path) for step, _, path in seen] == [(2, tmp_path / "ck"), (4, tmp_path / "ck")]
    assert "val_loss" not in seen[-1][1] and np.isfinite(seen[-1][1]["loss"])
