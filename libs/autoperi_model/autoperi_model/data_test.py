"""Dataset loading against pymatgen, and one real-data training + sampling smoke run (slow)."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Lattice, Structure

from autoperi_model._batch import CrystalBatch, CrystalTable
from autoperi_model._data import load_split, split_path
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
    expect = [batch.split()[i] for i in (2, 0, 3)]
    for (lat, frac, z), (lat2, frac2, z2) in zip(picked.split(), expect, strict=True):
        np.testing.assert_allclose(lat, lat2, rtol=1e-6)
        np.testing.assert_allclose(frac, frac2, rtol=1e-6)
        assert (z == z2).all()


@pytest.mark.slow
def test_perov_split_matches_the_csv(data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOPERI_CACHE_DIR", str(tmp_path))
    table, version = load_split("perov_5", "val", data_dir)
    with split_path("perov_5", "val", data_dir).open(newline="") as fh:
        rows = [row["cif"] for _, row in zip(range(20), csv.DictReader(fh), strict=False)]
    assert len(table) == 3787 and len(version) == 64
    matcher = StructureMatcher()
    for i, (lat, frac, z) in enumerate(table.gather(torch.arange(20)).split()):
        ours = Structure(Lattice(lat), z, frac)
        assert matcher.fit(ours, Structure.from_str(rows[i], fmt="cif"))


@pytest.mark.slow
def test_train_on_real_data_then_sample(data_dir, tiny_config, tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOPERI_CACHE_DIR", str(tmp_path / "cache"))
    val, version = load_split("perov_5", "val", data_dir)
    data = TrainingData(val, CrystalTable.from_batch(val.gather(torch.arange(64))), version)
    train(tiny_config.updated(train={"max_steps": 10}), data, tmp_path / "ck")
    crystals = Generator.from_checkpoint(tmp_path / "ck").generate_csp(["SrTiO3"], 4, steps=5)
    assert len(crystals) == 4 and all(c.formula == "SrTiO3" for c in crystals)
