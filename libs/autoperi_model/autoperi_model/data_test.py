"""Tables of crystals: gathering, building from crystals, and one real-data training + sampling
smoke run (slow)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from autoperi_data import read_records, split_path

from autoperi_model._batch import CrystalBatch, CrystalTable
from autoperi_model._generator import Generator
from autoperi_model._train import TrainingData, train


def test_table_gather_round_trips():
    rng = np.random.default_rng(0)
    sizes = [2, 5, 1, 3]
    batch = CrystalBatch.from_arrays(
        [rng.random((3, 3)) for _ in sizes],
        [rng.random((n, 3)) for n in sizes],
        [rng.integers(1, 90, n) for n in sizes],
    )
    table = CrystalTable.from_batch(batch)
    picked = table.gather(torch.tensor([2, 0, 3]))
    expect = [batch.arrays()[i] for i in (2, 0, 3)]
    for got, want in zip(picked.arrays(), expect, strict=True):
        np.testing.assert_allclose(got.lattice, want.lattice, rtol=1e-6)
        np.testing.assert_allclose(got.frac_coords, want.frac_coords, rtol=1e-6)
        assert (got.atomic_numbers == want.atomic_numbers).all()


def test_table_from_crystals_keeps_order_and_float64():
    batch = CrystalBatch.from_arrays([np.eye(3) * 4] * 2, [np.zeros((1, 3))] * 2, [[8], [26]])
    table = CrystalTable.from_crystals(batch.arrays())
    assert table.lattice.dtype == torch.float64 and table.atomic_numbers.tolist() == [8, 26]


def perov5_table(data_dir, split: str) -> CrystalTable:
    """A Perov-5 split as a table of canonical crystals, read by the dataset contract."""
    records = read_records(split_path("perov_5", split, data_dir))
    return CrystalTable.from_crystals([r.crystal.canonical() for r in records if r.crystal])


@pytest.mark.slow
def test_train_on_real_data_then_sample(data_dir, tiny_config, tmp_path):
    val = perov5_table(data_dir, "val")
    data = TrainingData(val, CrystalTable.from_batch(val.gather(torch.arange(64))), "perov_5:val")
    train(tiny_config.updated(train={"max_steps": 10}), data, tmp_path / "ck")
    crystals = Generator.from_checkpoint(tmp_path / "ck").generate_csp(["SrTiO3"], 4, steps=5)
    assert len(crystals) == 4 and all(c.formula == "SrTiO3" for c in crystals)
