"""The training data path: a split file -> ingest -> a reproducible dataset commit -> the
featurestore's shards -> the training tables, and `autoperi train` / `autoperi data commit` on
it."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from autoperi_data import csv_rows, read_records
from xtal import Crystal

from autoperi_app._datasets import DatasetStore
from autoperi_app.cli_test import run_cli

ROWS = {"train": 40, "val": 24}


@pytest.fixture(scope="module")
def small_perov5(data_dir, tmp_path_factory) -> Path:
    """A datasets folder whose perov_5 train and val splits are the first rows of the real ones."""
    root = tmp_path_factory.mktemp("datasets")
    (root / "perov_5").mkdir()
    for split, n in ROWS.items():
        rows = csv_rows((data_dir / "perov_5" / f"{split}.csv").read_text())
        (root / "perov_5" / f"{split}.csv").write_text("".join(rows[: n + 1]))
    return root


def test_split_commits_are_reproducible_and_hold_the_canonical_crystals(
    small_perov5, tmp_path, monkeypatch
):
    monkeypatch.setenv("AUTOPERI_DATA_DIR", str(small_perov5))
    first, second = DatasetStore(tmp_path / "a"), DatasetStore(tmp_path / "b")
    commit = first.split_commit("perov_5:train")
    assert second.split_commit("perov_5:train").commit == commit.commit  # another store
    assert first.split_commit("perov_5:train") == commit  # no second ingest
    assert commit.num_crystals == ROWS["train"]
    tables = first.training_data(_config())
    truth = {
        c.content_hash(): c.canonical()
        for r in read_records(small_perov5 / "perov_5" / "train.csv")
        for c in [r.crystal]
    }
    assert len(tables.train) == len(truth) and str(commit) in tables.version
    for got in tables.train.gather(torch.arange(len(tables.train))).arrays():
        want = truth[Crystal(got.lattice, got.frac_coords, got.atomic_numbers).content_hash()]
        np.testing.assert_allclose(got.lattice, want.lattice, atol=1e-12)
        np.testing.assert_allclose(got.frac_coords, want.frac_coords, atol=1e-12)
        np.testing.assert_array_equal(got.atomic_numbers, want.atomic_numbers)


def test_train_command_names_the_dataset_commits(small_perov5, tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(_config().model_dump(mode="json")))
    datasets, out = tmp_path / "datasets", tmp_path / "ck"
    result = run_cli("data", "commit", "perov_5:train", "--datasets", str(datasets),
                     env_data_dir=small_perov5)  # fmt: skip
    assert result.returncode == 0, result.stderr
    commit = result.stdout.split()[0]
    args = ["train", "--config", str(config), "--out", str(out), "--datasets", str(datasets)]
    result = run_cli(*args, env_data_dir=small_perov5)
    assert result.returncode == 0, result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert commit in manifest["data_version"] and "perov_5/val@" in manifest["data_version"]


def _config():
    from autoperi_model import BackboneConfig, Config

    small = BackboneConfig(hidden=16, layers=1, num_rbf=4, time_dim=4, cutoff=5.0, max_neighbors=8)
    train = {"max_steps": 2, "batch_size": 8, "progress": False, "checkpoint_every_steps": 2}
    return Config(backbone=small).updated(train=train)


def test_held_out_rows_leave_the_val_split_and_the_rest_joins_training(
    small_perov5, tmp_path, monkeypatch
):
    monkeypatch.setenv("AUTOPERI_DATA_DIR", str(small_perov5))
    config = _config().updated(data={"held_out_rows": 10})
    tables = DatasetStore(tmp_path / "store").training_data(config)
    hashes = {
        split: [r.crystal.canonical().content_hash()
                for r in read_records(small_perov5 / "perov_5" / f"{split}.csv")]
        for split in ROWS
    }  # fmt: skip

    def found(table):
        arrays = table.gather(torch.arange(len(table))).arrays()
        return sorted(Crystal(a.lattice, a.frac_coords, a.atomic_numbers).content_hash()
                      for a in arrays)  # fmt: skip

    assert found(tables.val) == sorted(hashes["val"][:10])
    assert found(tables.train) == sorted(hashes["train"] + hashes["val"][10:])
    assert "held out: perov_5:val[:10]" in tables.version


def test_symmetric_flows_train_on_idealised_crystals_with_their_operations(
    small_perov5, tmp_path, monkeypatch
):
    monkeypatch.setenv("AUTOPERI_DATA_DIR", str(small_perov5))
    monkeypatch.setenv("AUTOPERI_CACHE_DIR", str(tmp_path / "cache"))
    config = _config().updated(flow={"symmetric": True}, data={"held_out_rows": 10})
    tables = DatasetStore(tmp_path / "store").training_data(config)
    assert len(tables.train) == ROWS["train"] + ROWS["val"] - 10 and len(tables.val) == 10
    batch = tables.train.gather(torch.arange(4))
    assert batch.symmetry is not None and batch.symmetry.representative.shape == (20,)
    assert list((tmp_path / "cache" / "symmetry").glob("*.pt"))  # analyses are cached
