"""The `autoperi` command as a user runs it: real processes, real files, exit codes and messages."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

BAD_INPUTS = Path(__file__).resolve().parents[3] / "tests" / "data" / "bad_inputs"


def run_cli(*args: str, env_data_dir: Path | None = None) -> subprocess.CompletedProcess:
    import os

    env = dict(os.environ)
    if env_data_dir is not None:
        env["AUTOPERI_DATA_DIR"] = str(env_data_dir)
    return subprocess.run(
        [sys.executable, "-m", "autoperi_app.main", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )


def test_help_lists_commands():
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("data", "demo", "bench", "eval", "sample", "relax-lattice", "eval-lattice"):
        assert command in result.stdout


def test_inspect_real_split(data_dir):
    result = run_cli("data", "inspect", str(data_dir / "carbon_24" / "val.csv"), "--limit", "3")
    assert result.returncode == 0, result.stderr
    assert "2032 accepted, 0 rejected" in result.stdout


def test_inspect_missing_file_is_a_clear_error(tmp_path):
    result = run_cli("data", "inspect", str(tmp_path / "nope.cif"))
    assert result.returncode == 2
    assert "no such file" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.parametrize("strict, code", [(False, 0), (True, 1)])
def test_inspect_bad_file_reports_reasons(strict, code):
    bad = sorted(p for p in BAD_INPUTS.glob("*.cif"))
    assert bad, "the bad-input corpus is missing"
    args = ["data", "inspect", str(bad[0])] + (["--strict"] if strict else [])
    result = run_cli(*args)
    assert result.returncode == code, result.stderr
    assert "rejected" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_demo_rejects_unknown_split(data_dir):
    result = run_cli("demo", "--split", "perov_5:nope", env_data_dir=data_dir)
    assert result.returncode == 2
    assert "unknown split" in result.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--subset", "0"], "--subset must be at least 1, got 0"),
        (["--base-port", "80"], "--base-port must be in 1024..64500"),
        (["--checkpoint", "no/such/checkpoint"], "no checkpoint at no/such/checkpoint"),
    ],
)
def test_demo_rejects_bad_options_before_starting_anything(data_dir, tmp_path, args, message):
    result = run_cli("demo", *args, "--work-dir", str(tmp_path / "w"), env_data_dir=data_dir)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "w").exists()  # no stack was started, nothing written


def test_demo_never_wipes_a_folder_it_did_not_make(data_dir, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    result = run_cli("demo", "--work-dir", str(tmp_path), env_data_dir=data_dir)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "is not empty and not a demo folder" in " ".join(result.stderr.split())
    assert (tmp_path / "notes.txt").read_text() == "mine"


@pytest.mark.slow
@pytest.mark.e2e
def test_full_demo_writes_its_report(data_dir, tmp_path):
    """The whole walkthrough, small: a real stack, ingest, featurise, sample, score, one round."""
    out = tmp_path / "report"
    result = run_cli(
        "demo", "--subset", "40", "--samples", "2", "--num-targets", "2",
        "--samples-per-target", "4", "--fine-tune-steps", "2", "--held-out-size", "8",
        "--work-dir", str(tmp_path / "work"), "--out", str(out), "--base-port", "50661",
        env_data_dir=data_dir,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads((out / "demo.json").read_text())
    assert list(summary["seconds"]) == [
        "validate", "stack", "ingest", "featurise", "sample", "score", "loop", "stop",
    ]  # fmt: skip
    assert summary["figures"]["ingest"]["accepted"] == 40
    assert summary["figures"]["featurise"]["shards"] >= 1
    assert len(summary["figures"]["sample"]["rows"]) == 6
    assert set(summary["figures"]["exit_codes"].values()) == {0}
    journal = json.loads((out / "loop" / "journal.json").read_text())
    assert journal["state"] == "succeeded" and journal["rounds"][0]["decision"]
    assert "## 5. One active-learning round" in (out / "README.md").read_text()


def test_bench_sample_on_a_split_times_the_checkpoint_and_its_baseline(data_dir, tmp_path):
    import json

    result = run_cli("bench", "sample", "--checkpoint", "checkpoints/perov_5_csp", "--split",
                     "perov_5:test[0:6]", "--baseline", "checkpoints/perov_5_dng", "--out",
                     str(tmp_path), env_data_dir=data_dir)  # fmt: skip
    assert result.returncode != 0 and "dng" in result.stderr  # a baseline must serve CSP too
    result = run_cli("bench", "sample", "--checkpoint", "checkpoints/perov_5_csp", "--split",
                     "perov_5:test[0:6]", "--baseline", "checkpoints/perov_5_csp", "--out",
                     str(tmp_path), env_data_dir=data_dir)  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "sample_cells.json").read_text())
    assert report["crystals"] == 6 and report["mean_nfe"] == report["baseline_mean_nfe"] > 0
    assert report["speed_ratio"] > 0


def test_sample_refuses_a_tampered_checkpoint_with_the_reason(tmp_path):
    """Weights replaced by a pickle that runs code, manifest re-signed: a user error (exit 2)
    saying why, never torch's advice to load it unsafely, and nothing in the file runs."""
    from autoperi_model.testing import tampered_checkpoint

    source = Path(__file__).resolve().parents[3] / "checkpoints" / "perov_5_csp"
    tampered = tampered_checkpoint(source, tmp_path / "tampered")
    out = tmp_path / "samples.json"
    result = run_cli(
        "sample", "--checkpoint", str(tampered), "--composition", "NaCl", "--out", str(out)
    )
    message = " ".join(result.stderr.split())
    assert result.returncode == 2, result.stdout + result.stderr
    assert "its weights (model.pt) are not a plain tensor file; refused for safety" in message
    for advice in ("weights_only", "trust", "internal error", "Traceback"):
        assert advice not in result.stdout + message, advice
    assert not (tampered / "unpickled").exists() and not out.exists()


def test_inspect_prints_text_from_the_file_with_control_characters_escaped():
    """Block names with terminal escapes (set title, clear screen), rich markup and a bidi
    override are shown as escapes; the terminal never receives them."""
    result = run_cli("data", "inspect", str(BAD_INPUTS / "escape_sequences_in_names.cif"))
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "2 accepted, 1 rejected, 0 skipped" in out
    for raw in ("\x1b]0;", "\x07", "\x1b[2J", "\u202e"):
        assert raw not in out
    assert "\\x1b[2J\\x1b[1;1H" in out  # the rejected block's name, escaped
    assert "[/]markup" in out  # markup shown as text, not applied


def test_inspect_skips_publication_blocks_of_a_journal_cif():
    """A journal CIF's publication and powder-profile blocks are reported as skipped, not as
    rejections: --strict passes."""
    path = BAD_INPUTS / "journal_powder_profile_blocks.cif"
    result = run_cli("data", "inspect", str(path), "--strict")
    assert result.returncode == 0, result.stdout + result.stderr
    text = " ".join(result.stdout.split())
    assert "1 accepted, 0 rejected, 2 skipped" in text
    assert "no crystal structure in block 'global'" in text
    assert "truncated" not in text
