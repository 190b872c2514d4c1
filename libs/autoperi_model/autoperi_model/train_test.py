"""Training loop: the loss goes down, checkpoints verify, and resuming is exact."""

from __future__ import annotations

import json

import pytest
import torch

from autoperi_model._checkpoint import MANIFEST_FILE, MODEL_FILE, load_weights, sha256_file
from autoperi_model._train import WarmStartError, batch_indices, learning_rate, train


def test_training_lowers_the_validation_loss(tiny_config, tiny_data, tmp_path):
    losses = []
    train(tiny_config, tiny_data, tmp_path / "ck", callbacks=[lambda s, m: losses.append(m)])
    manifest = json.loads((tmp_path / "ck" / MANIFEST_FILE).read_text())
    first = manifest["metrics"]["val_loss"]
    config = tiny_config.updated(train={"max_steps": 160})
    train(config, tiny_data, tmp_path / "ck", resume=True)
    last = json.loads((tmp_path / "ck" / MANIFEST_FILE).read_text())["metrics"]["val_loss"]
    assert last < 0.9 * first, (first, last)
    assert len(losses) == 4 and all(torch.isfinite(torch.tensor(m["loss"])) for m in losses)


def test_resume_is_exact(tiny_config, tiny_data, tmp_path):
    straight = train(tiny_config, tiny_data, tmp_path / "a")
    train(tiny_config, tiny_data, tmp_path / "b", stop_at=20)
    resumed = train(tiny_config, tiny_data, tmp_path / "b", resume=True)
    for key, value in straight.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key
    assert sha256_file(tmp_path / "a" / MODEL_FILE) == sha256_file(tmp_path / "b" / MODEL_FILE)


def test_checkpoint_manifest_and_tamper_check(tiny_config, tiny_data, tmp_path):
    config = tiny_config.updated(train={"max_steps": 3})
    train(config, tiny_data, tmp_path / "ck")
    weights, manifest = load_weights(tmp_path / "ck")
    assert manifest.step == 3 and manifest.data_version == "synthetic"
    assert manifest.config == config and manifest.weights_sha256 == sha256_file(
        tmp_path / "ck" / MODEL_FILE
    )
    torch.save({k: v + 1 for k, v in weights.items()}, tmp_path / "ck" / MODEL_FILE)
    with pytest.raises(ValueError, match="sha256"):
        load_weights(tmp_path / "ck")


def test_batches_cover_each_epoch_once():
    seen = torch.cat([batch_indices(s, 100, 10, seed=3) for s in range(10)])
    assert sorted(seen.tolist()) == list(range(100))
    assert not torch.equal(batch_indices(0, 100, 10, 3), batch_indices(10, 100, 10, 3))


def test_learning_rate_schedule(tiny_config):
    rates = [learning_rate(s, tiny_config) for s in range(tiny_config.train.max_steps + 1)]
    assert rates[0] < rates[4] == pytest.approx(tiny_config.train.lr)
    assert rates[-1] == pytest.approx(tiny_config.train.min_lr)


def test_warm_start_adds_lattice_features_as_a_no_op(tiny_config, tiny_data, tmp_path):
    base = train(tiny_config.updated(train={"max_steps": 3}), tiny_data, tmp_path / "base")
    grown = tiny_config.updated(
        backbone={"lattice_vectors": 14}, train={"max_steps": 1, "lr": 1e-12, "warmup_steps": 0}
    )
    grown = grown.updated(train={"init_from": str(tmp_path / "base")})
    warm = train(grown, tiny_data, tmp_path / "warm")
    batch = tiny_data.val.gather(torch.arange(8)).to(torch.float64)
    t = torch.full((8,), 0.4, dtype=torch.float64)
    before, after = base.double().velocities(batch, t), warm.double().velocities(batch, t)
    for key, value in before.items():
        torch.testing.assert_close(after[key], value, atol=1e-6, rtol=1e-5)


def test_a_warm_start_that_does_not_fit_is_a_warm_start_error(tiny_config, tiny_data, tmp_path):
    """Extra weights, other shapes and unreadable checkpoints all raise the one typed error
    (which the trainer service turns into a message naming the checkpoint id only)."""
    train(tiny_config.updated(train={"max_steps": 1}), tiny_data, tmp_path / "base")
    (tmp_path / "empty").mkdir()
    for model, directory in (
        ({"layers": tiny_config.backbone.layers - 1}, "base"),  # the checkpoint has more weights
        ({"hidden": tiny_config.backbone.hidden * 2}, "base"),  # other shapes
        ({}, "empty"),
    ):
        config = tiny_config.updated(
            backbone=model, train={"max_steps": 1, "init_from": str(tmp_path / directory)}
        )
        with pytest.raises(WarmStartError, match=r"does not fit|lacks"):
            train(config, tiny_data, tmp_path / "warm")
