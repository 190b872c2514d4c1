"""The typer sub-app: a small end-to-end run writes every report file; bad input is a message."""

import json

from typer.testing import CliRunner

from autoperi_eval import write_samples_json
from autoperi_eval.cli import app


def test_eval_writes_report_files(load_split, tmp_path, monkeypatch, eval_cache_dir) -> None:
    monkeypatch.setenv("AUTOPERI_CACHE_DIR", str(eval_cache_dir))
    records = load_split("perov_5:test[:8]")
    samples = write_samples_json(
        [r.structure for r in records],
        tmp_path / "s.json",
        properties=[{"gt_index": r.index} for r in records],
    )
    out = tmp_path / "out"
    runner = CliRunner()
    common = [
        "--reference",
        "perov_5:test[:8]",
        "--no-energy",
        "--no-novelty",
        "--workers",
        "1",
        "--out",
        str(out),
    ]
    result = runner.invoke(app, ["eval", str(samples), "--task", "dng", "--name", "d", *common])
    assert result.exit_code == 0, result.output
    for suffix in (
        ".json",
        ".csv",
        ".md",
        "_density.png",
        "_n_elem.png",
        "_spacegroups.png",
        "_structures.png",
    ):
        assert (out / f"d{suffix}").is_file(), suffix
    report = json.loads((out / "d.json").read_text())
    assert report["metrics"]["coverage"]["cov_recall"] == 1.0
    assert report["counts"]["n_samples"] == 8
    assert len((out / "d.csv").read_text().splitlines()) == 9
    result = runner.invoke(
        app, ["eval", str(samples), "--task", "csp", "--name", "c", "--k", "1", *common]
    )
    assert result.exit_code == 0, result.output
    assert (
        json.loads((out / "c.json").read_text())["metrics"]["match"]["k1_ungated"]["match_rate"]
        == 1.0
    )


def test_bad_reference_is_a_message(tmp_path) -> None:
    result = CliRunner().invoke(app, ["eval", str(tmp_path), "--reference", "nope:test"])
    assert result.exit_code == 2
    assert "unknown dataset" in result.output
