"""Lattice restoration (task: lattice): the base law, the metrics against pymatgen, the
restoring flow's symmetries, training that measurably denoises, the evaluation and the CLI."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from periodic import sym_logm
from pymatgen.core import Lattice, Structure
from typer.testing import CliRunner
from xtal import Crystal

from autoperi_model._batch import CrystalTable
from autoperi_model._flow import build_model
from autoperi_model._generator import Generator, ModelGenerator
from autoperi_model._lattice import LatticeRestoreFlow, deform, volume_cube
from autoperi_model._lattice_eval import evaluate_lattice_tasks, lattice_errors
from autoperi_model._train import train
from autoperi_model.cli import app
from autoperi_model.testing import FieldKind, assert_equivariant, random_batch


@pytest.fixture(scope="module")
def lattice_checkpoint(tmp_path_factory, tiny_data):
    from autoperi_model._config import BackboneConfig, Config

    small = BackboneConfig(hidden=32, layers=2, num_rbf=8, time_dim=8, cutoff=5.0, max_neighbors=12)
    config = Config(task="lattice", backbone=small).updated(
        train={"max_steps": 150, "lr": 3e-3, "warmup_steps": 5, "progress": False},
        flow={"deform_std": 0.1, "cubic_share": 0.5},
    )
    path = tmp_path_factory.mktemp("lat") / "model"
    train(config, tiny_data, path)
    return path


def test_deform_applies_a_symmetric_gaussian_log_strain():
    lattice = torch.as_tensor(random_batch((1,) * 4000, seed=3).lattice)
    moved = deform(lattice, 0.1, torch.Generator().manual_seed(0))
    log = sym_logm(torch.linalg.solve(lattice, moved))
    assert torch.allclose(log, log.mT, atol=1e-8)
    assert abs(float(torch.diagonal(log, dim1=-2, dim2=-1).std()) - 0.1) < 0.005
    assert abs(float(log[:, 0, 1].std()) - 0.1 / 2**0.5) < 0.005


def test_volume_cube_keeps_the_volume():
    lattice = random_batch((2, 3), seed=1).lattice
    cube = volume_cube(lattice)
    assert torch.allclose(torch.linalg.det(cube), torch.linalg.det(lattice).abs())
    assert torch.allclose(cube, torch.diag_embed(torch.diagonal(cube, dim1=-2, dim2=-1)))


def test_bases_mix_cubes_and_deformations_and_paths_end_at_the_data():
    batch = random_batch((2,) * 2000, seed=2)
    flow = LatticeRestoreFlow(deform_std=0.1, cubic_share=0.3, base_std=0.0)
    gen = torch.Generator().manual_seed(1)
    x0, _ = flow.corrupt(batch.lattice, torch.zeros(2000, dtype=torch.float64), batch, gen)
    cubic = torch.isclose(x0, volume_cube(batch.lattice)).all((-2, -1))
    assert 0.3 * 2000 - 4 * 20.5 < int(cubic.sum()) < 0.3 * 2000 + 4 * 20.5  # binomial sd 20.5
    strain = torch.linalg.solve(batch.lattice[~cubic], x0[~cubic])
    assert torch.allclose(strain, strain.mT, atol=1e-10)
    x1, _ = flow.corrupt(batch.lattice, torch.ones(2000, dtype=torch.float64), batch, gen)
    gram = batch.lattice @ batch.lattice.mT  # the same crystal up to a rotation
    assert torch.allclose(x1 @ x1.mT, gram, atol=1e-8)


def test_lattice_errors_match_pymatgen():
    pred, true = random_batch((1, 1, 1), seed=4).lattice, random_batch((1, 1, 1), seed=5).lattice
    ours = lattice_errors(pred, true)
    lat_p = [Lattice(m.numpy()) for m in pred]
    lat_t = [Lattice(m.numpy()) for m in true]
    pairs = list(zip(lat_p, lat_t, strict=True))
    lengths = np.mean([np.abs(np.subtract(p.abc, t.abc)) for p, t in pairs])
    angles = np.mean([np.abs(np.subtract(p.angles, t.angles)) for p, t in pairs])
    assert ours["lengths"] == pytest.approx(lengths) and ours["angles"] == pytest.approx(angles)


@pytest.mark.parametrize(
    "action", ["rotation", "reflection", "translation", "permutation", "image"]
)
def test_restored_cell_is_equivariant(lattice_checkpoint, action):
    model = Generator.from_checkpoint(lattice_checkpoint).model.double()

    def restored_gram(batch):
        out, _ = model.integrate(batch, 3, "euler", torch.Generator().manual_seed(0))
        return {"gram": out.lattice @ out.lattice.mT}

    kinds = {"gram": FieldKind.CRYSTAL_INVARIANT}
    assert_equivariant(restored_gram, kinds, random_batch((3, 5), seed=6), action)


def test_training_learns_to_undo_deformations(lattice_checkpoint, tiny_data):
    gen = Generator.from_checkpoint(lattice_checkpoint)
    test = CrystalTable.from_batch(tiny_data.val.gather(torch.arange(32)))
    result = evaluate_lattice_tasks(gen, test, deform_std=0.1, steps=10)
    assert result["n_crystals"] == 32
    noisy = deform(test.lattice.double(), 0.1, torch.Generator().manual_seed(0))
    assert result["denoise_before"] == lattice_errors(noisy, test.lattice)
    assert result["denoise_improvement"]["lengths"] > 0.5 * result["denoise_before"]["lengths"]
    cube = result["reconstruct_cube_baseline"]
    assert result["reconstruct"]["lengths"] < cube["lengths"] + 0.05


def test_restore_keeps_atoms_and_refuses_other_tasks(lattice_checkpoint, tiny_data):
    gen = Generator.from_checkpoint(lattice_checkpoint)
    given = [
        Crystal(a.lattice, a.frac_coords, a.atomic_numbers)
        for a in tiny_data.val.gather(torch.arange(3)).arrays()
    ]
    restored = gen.restore_lattices(given, steps=2, sampler="euler")
    for before, after in zip(given, restored, strict=True):
        assert np.array_equal(before.atomic_numbers, after.atomic_numbers)
        assert np.allclose(before.frac_coords, after.frac_coords, atol=1e-6)
        assert after.properties["nfe"] == 2.0
    with pytest.raises(ValueError, match="lattice/flow model"):
        gen.generate_csp(["SrTiO3"])
    config = gen.manifest.config.model_copy(update={"task": "csp"})
    csp = ModelGenerator(
        build_model(config, 12.0), dataclasses.replace(gen.manifest, config=config)
    )
    with pytest.raises(ValueError, match="cannot serve lattice"):
        csp.restore_lattices(given)


def test_cli_relax_lattice(lattice_checkpoint, tmp_path):
    cif = tmp_path / "in.cif"
    cubic = Lattice.from_parameters(4.0, 4.1, 4.2, 90, 90, 90)
    sites = [[0.5] * 3, [0, 0, 0], [0.5, 0, 0]]
    cif.write_text(Structure(cubic, ["Sr", "Ti", "O"], sites).to(fmt="cif"))
    args = ["relax-lattice", "--checkpoint", str(lattice_checkpoint), "--input", str(cif)]
    out = ["--cubic", "--steps", "4", "--out", str(tmp_path / "o")]
    result = CliRunner().invoke(app, [*args, *out])
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "o" / "samples.json").read_text())["crystals"][0]
    volume = abs(np.linalg.det(np.array(record["lattice"])))
    assert record["atomic_numbers"] == [38, 22, 8] and 20.0 < volume < 200.0
    empty = tmp_path / "empty.cif"
    empty.write_text("")
    result = CliRunner().invoke(app, [*args[:3], "--input", str(empty), "--out", str(tmp_path)])
    assert result.exit_code != 0
