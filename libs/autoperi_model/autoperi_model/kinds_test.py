"""The registry of checkpoint kinds: a new kind is loaded by its registered loader, and a
checkpoint is refused before loading when it serves none of the asked tasks or processes, or
when its weights are not a plain tensor file (a tampered checkpoint)."""

import json
from pathlib import Path

import numpy as np
import pytest
from xtal import Crystal

from autoperi_model import UnsafeCheckpoint, _kinds
from autoperi_model._generator import Generator
from autoperi_model._kinds import CheckpointMismatch, checkpoint_kind, load_generator, register_kind
from autoperi_model._sampling import SampleSpec
from autoperi_model.testing import tampered_checkpoint


class Example(Generator):
    """A stand-in for a new kind of model: a cubic cell with every atom at the origin."""

    kind, tasks, samplers = "csp/example", frozenset({"csp"}), ("lookup",)

    def sample(self, specs, steps=None, sampler=None, batch_size=512, noise_seed=None):
        self.check(specs)
        return [Crystal(np.eye(3) * 4, np.zeros((len(s.atomic_numbers), 3)), s.atomic_numbers)
                for s in specs]  # fmt: skip


@pytest.fixture()
def example(tmp_path, monkeypatch):
    monkeypatch.setattr(_kinds, "_KINDS", dict(_kinds._KINDS))  # registrations end with the test
    loaded = []
    register_kind("csp/example", lambda path: loaded.append(path) or Example("t1"), ["csp"])
    (tmp_path / "manifest.json").write_text(json.dumps({"kind": "csp/example"}))
    return tmp_path, loaded


def test_a_registered_kind_loads_through_the_facade(example):
    path, loaded = example
    assert checkpoint_kind(path) == "csp/example"
    gen = Generator.from_checkpoint(path, tasks=["csp"], processes=["example"])
    assert loaded == [path] and isinstance(gen, Example)
    (crystal,) = gen.generate_csp(["NaCl"])
    assert crystal.formula == "NaCl"
    with pytest.raises(ValueError, match="takes no condition band_gap"):
        gen.sample([SampleSpec(0, np.array([11, 17]), conditions={"band_gap": 1.0})])
    with pytest.raises(CheckpointMismatch, match="cannot serve dng"):
        gen.generate_dng(2)


def test_wrong_tasks_processes_and_kinds_are_refused_before_loading(example, tmp_path):
    path, loaded = example
    with pytest.raises(CheckpointMismatch, match=r"csp/example checkpoint \(csp: predicts"):
        load_generator(path, tasks=["dng", "lattice"])
    with pytest.raises(CheckpointMismatch, match=r"\(process example\); this needs process flow"):
        load_generator(path, processes=["flow"])
    assert loaded == []
    (tmp_path / "manifest.json").write_text(json.dumps({"kind": "csp/unknown"}))
    with pytest.raises(CheckpointMismatch, match="csp/unknown checkpoint, not a known kind"):
        load_generator(path)
    with pytest.raises(ValueError, match="already registered"):
        register_kind("csp/flow", lambda p: None, ["csp"])


def test_manifests_without_a_kind_are_keyed_by_task_and_process(tmp_path):
    config = {"task": "lattice", "process": "flow"}
    (tmp_path / "manifest.json").write_text(json.dumps({"config": config}))
    assert checkpoint_kind(tmp_path) == "lattice/flow"
    (tmp_path / "manifest.json").write_text(json.dumps({"config": {}}))
    assert checkpoint_kind(tmp_path) == "csp/flow"  # the released perov_5_csp manifest's case


@pytest.mark.parametrize("name", ["perov_5_csp", "perov_5_dng"])
def test_a_tampered_checkpoint_is_refused_without_unpickling_it(tmp_path, name):
    source = Path(__file__).resolve().parents[3] / "checkpoints" / name
    tampered = tampered_checkpoint(source, tmp_path / "ckpt")
    with pytest.raises(UnsafeCheckpoint) as info:
        Generator.from_checkpoint(tampered)
    message = str(info.value)
    assert "its weights (model.pt) are not a plain tensor file; refused for safety" in message
    assert "weights_only" not in message and "trust" not in message
    assert not (tampered / "unpickled").exists()  # nothing in the file ran
