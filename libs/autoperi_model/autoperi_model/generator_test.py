"""Generator facade and the typer sub-app: compositions, sampling, files, clear errors."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import torch
from pymatgen.core import Composition
from typer.testing import CliRunner

from autoperi_model._generator import Generator
from autoperi_model._sampling import parse_composition
from autoperi_model._train import train
from autoperi_model.cli import app


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, tiny_data):
    from autoperi_model._config import BackboneConfig, Config

    small = BackboneConfig(hidden=16, layers=1, num_rbf=4, time_dim=4, cutoff=5.0, max_neighbors=8)
    config = Config(backbone=small).updated(train={"max_steps": 2, "progress": False})
    path = tmp_path_factory.mktemp("ck") / "model"
    train(config, tiny_data, path)
    return path


@pytest.mark.parametrize("formula", ["SrTiO3", "Sr2Ti2O6", "LiFePO4", "Fe"])
def test_parse_composition_matches_pymatgen(formula):
    numbers = parse_composition(formula)
    expected = {el.Z: int(n) for el, n in Composition(formula).items()}
    assert Counter(numbers.tolist()) == expected


@pytest.mark.parametrize("bad", ["", "Xx2", "SrTi0.5O3", "H200"])
def test_parse_composition_rejects_bad_input(bad):
    with pytest.raises(ValueError, match="composition"):
        parse_composition(bad)


def test_generate_csp_gives_requested_compositions(checkpoint):
    gen = Generator.from_checkpoint(checkpoint)
    crystals = gen.generate_csp(["SrTiO3", "BaZrO3"], 2, steps=2, sampler="euler", seed=1)
    assert [c.formula for c in crystals] == ["SrTiO3"] * 2 + ["BaZrO3"] * 2
    assert all(c.properties["nfe"] == 2 for c in crystals)
    again = gen.generate_csp(["SrTiO3", "BaZrO3"], 2, steps=2, sampler="euler", seed=1)
    assert all((a.lattice == b.lattice).all() for a, b in zip(crystals, again, strict=True))


def test_cli_sample_writes_cifs_and_json(checkpoint, tmp_path):
    args = ["sample", "--checkpoint", str(checkpoint), "--composition", "SrTiO3"]
    args += ["--n", "3", "--steps", "2", "--out", str(tmp_path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "samples.json").read_text())
    assert len(data["crystals"]) == 3 and len(list(tmp_path.glob("*.cif"))) == 3
    assert data["crystals"][0]["properties"]["nfe"] == 2
    from autoperi_data import PERMISSIVE_LIMITS
    from xtal import Crystal

    text = (tmp_path / data["crystals"][0]["file"]).read_text()
    first = Crystal.from_cif(text, PERMISSIVE_LIMITS)  # a 2-step model's atoms may overlap
    assert first.formula == "SrTiO3"


def test_cli_sample_bad_composition_is_a_clear_error(checkpoint, tmp_path):
    args = [
        "sample",
        "--checkpoint",
        str(checkpoint),
        "--composition",
        "Qq3",
        "--out",
        str(tmp_path),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0
    assert isinstance(result.exception, ValueError) and "Qq3" in str(result.exception)


def test_cli_sample_split_tags_each_row_with_its_ground_truth(checkpoint, tmp_path, data_dir):
    import autoperi_data

    args = ["sample", "--checkpoint", str(checkpoint), "--split", "perov_5:test"]
    args += ["--n", "2", "--steps", "1", "--out", str(tmp_path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    samples = json.loads((tmp_path / "samples.json").read_text())["crystals"]
    truth = [r.crystal for r in autoperi_data.read_records(data_dir / "perov_5" / "test.csv")]
    assert len(samples) == 2 * len(truth)
    for sample in samples[:: len(samples) // 50]:
        gt = truth[int(sample["properties"]["gt_index"])]
        assert Counter(sample["atomic_numbers"]) == Counter(gt.atomic_numbers.tolist())


def test_cli_sample_needs_exactly_one_source(checkpoint, tmp_path):
    args = ["sample", "--checkpoint", str(checkpoint), "--out", str(tmp_path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0
    assert "one of --composition" in result.output


def test_cli_sample_split_rows_keep_their_file_row_numbers(checkpoint, tmp_path, data_dir):
    args = ["sample", "--checkpoint", str(checkpoint), "--split", "perov_5:test[10:13]"]
    result = CliRunner().invoke(app, [*args, "--steps", "1", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    samples = json.loads((tmp_path / "samples.json").read_text())["crystals"]
    assert [s["properties"]["gt_index"] for s in samples] == [10.0, 11.0, 12.0]


@pytest.fixture(scope="module")
def dng_checkpoint(tmp_path_factory, tiny_data):
    from autoperi_model._config import Config

    config = Config.model_validate(
        {
            "task": "dng",
            "backbone": {"hidden": 16, "layers": 1, "num_rbf": 4, "time_dim": 4, "cutoff": 5.0},
            "train": {"max_steps": 2, "progress": False},
        }
    )
    path = tmp_path_factory.mktemp("ck") / "dng"
    train(config, tiny_data, path)
    return path


def test_generate_dng_draws_atom_counts_from_the_training_histogram(dng_checkpoint, tiny_data):
    gen = Generator.from_checkpoint(dng_checkpoint)
    counts = torch.bincount(tiny_data.train.num_atoms).tolist()
    assert gen.tasks == {"dng"} and list(gen.manifest.num_atoms_counts) == counts
    crystals = gen.generate_dng(7, steps=3, sampler="euler", seed=2)
    assert [len(c.atomic_numbers) for c in crystals] == [5] * 7  # the synthetic data: ABX3
    assert all(c.atomic_numbers.min() >= 1 for c in crystals)
    again = gen.generate_dng(7, steps=3, sampler="euler", seed=2)
    assert [c.formula for c in again] == [c.formula for c in crystals]
    with pytest.raises(ValueError, match=r"dng/flow model .* cannot serve csp"):
        gen.generate_csp(["SrTiO3"])


def test_csp_checkpoints_refuse_de_novo_and_old_manifests_still_load(checkpoint):
    from autoperi_model._checkpoint import read_manifest

    with pytest.raises(ValueError, match=r"csp/flow model .* cannot serve dng"):
        Generator.from_checkpoint(checkpoint).generate_dng(3)
    released = read_manifest(Path(__file__).parents[3] / "checkpoints" / "perov_5_csp")
    assert released.num_atoms_counts == () and released.config.task == "csp"


def test_cli_sample_dng(dng_checkpoint, checkpoint, tmp_path):
    args = ["sample", "--dng", "--n", "4", "--steps", "2", "--out", str(tmp_path)]
    result = CliRunner().invoke(app, [*args, "--checkpoint", str(dng_checkpoint)])
    assert result.exit_code == 0, result.output
    assert len(json.loads((tmp_path / "samples.json").read_text())["crystals"]) == 4
    result = CliRunner().invoke(app, [*args, "--checkpoint", str(checkpoint)])
    assert result.exit_code != 0 and "csp/flow checkpoint" in str(result.exception)
    both = [*args, "--checkpoint", str(dng_checkpoint), "--composition", "SrTiO3"]
    result = CliRunner().invoke(app, both)
    assert result.exit_code != 0 and "one of --composition" in result.output
