"""`autoperi templates build | attach | ion-exchange` on real data, and sampling the result."""

import json
from pathlib import Path

import yaml

from autoperi_app.cli_test import run_cli
from autoperi_app.datasets_test import small_perov5  # noqa: F401  (fixture)


def test_build_attach_and_sample(small_perov5, tmp_path):  # noqa: F811
    config = tmp_path / "templates.yaml"
    config.write_text(yaml.safe_dump({
        "data": {"dataset": "perov_5", "train_split": "train", "val_split": "val",
                 "held_out_rows": 8},
        "queries": 30, "epochs": 5, "hidden": 8,
    }))  # fmt: skip
    out, store = tmp_path / "templates", tmp_path / "datasets"
    args = ["--config", str(config), "--out", str(out), "--datasets", str(store), "--workers", "1"]
    result = run_cli("templates", "build", *args, env_data_dir=small_perov5)
    assert result.returncode == 0, result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == "csp/templates" and manifest["ranker"] == "learned"
    assert manifest["num_templates"] == 40 + 24 - 8
    assert 0.0 <= manifest["metrics"]["held_out_learned"]["match_rate"] <= 1.0
    assert "held out: perov_5:val[:8]" in manifest["data_version"]
    result = run_cli("sample", "--checkpoint", str(out), "--composition", "SrTiO3", "--n", "2",
                     "--out", str(tmp_path / "samples"), env_data_dir=small_perov5)  # fmt: skip
    assert result.returncode == 0, result.stderr
    samples = json.loads((tmp_path / "samples" / "samples.json").read_text())
    assert len(samples["crystals"] if isinstance(samples, dict) else samples) == 2
    not_symmetric = run_cli("templates", "attach", "--templates", str(out), "--flow",
                            "checkpoints/perov_5_csp", env_data_dir=small_perov5)  # fmt: skip
    assert not_symmetric.returncode != 0 and "not a symmetric flow" in not_symmetric.stderr
    not_csp = run_cli("templates", "attach", "--templates", str(out), "--fallback",
                      "checkpoints/perov_5_dng", env_data_dir=small_perov5)  # fmt: skip
    assert not_csp.returncode != 0 and "not a P1 CSP flow" in not_csp.stderr
    orphan = ["sample", "--checkpoint", str(out), "--composition", "NaCl", "--out",
              str(tmp_path / "orphan")]  # fmt: skip
    refused = run_cli(*orphan, env_data_dir=small_perov5)
    assert refused.returncode != 0 and "no template" in refused.stderr
    attached = run_cli("templates", "attach", "--templates", str(out), "--fallback",
                       "checkpoints/perov_5_csp", env_data_dir=small_perov5)  # fmt: skip
    assert attached.returncode == 0, attached.stderr
    assert run_cli(*orphan, env_data_dir=small_perov5).returncode == 0


def test_ion_exchange_over_a_template_checkpoint_samples_de_novo(tmp_path):
    out = tmp_path / "ion_exchange"
    made = run_cli("templates", "ion-exchange", "--templates", "checkpoints/mp_20_lookup",
                   "--out", str(out))  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert json.loads((out / "manifest.json").read_text())["kind"] == "dng/ion_exchange"
    result = run_cli("sample", "--checkpoint", str(out), "--dng", "--n", "3",
                     "--out", str(tmp_path / "samples"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "samples").glob("*.cif"))) == 3
    csp = run_cli("sample", "--checkpoint", str(out), "--composition", "NaCl",
                  "--out", str(tmp_path / "csp"))  # fmt: skip
    assert csp.returncode != 0 and "dng/ion_exchange" in csp.stderr


def test_the_learned_substitution_checkpoint_is_what_the_cli_writes(tmp_path):
    out = tmp_path / "substitution"
    made = run_cli("templates", "ion-exchange", "--templates", "checkpoints/mp_20_lookup",
                   "--out", str(out), "--learned")  # fmt: skip
    assert made.returncode == 0, made.stderr
    shipped = Path("checkpoints/mp_20_substitution")
    assert (out / "manifest.json").read_text() == (shipped / "manifest.json").read_text()
    assert json.loads((out / "manifest.json").read_text())["substitution"] == {
        "learned_partners": False, "charge_balanced": True, "learned_volumes": True,
    }  # fmt: skip
