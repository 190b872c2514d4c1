"""The `autoperi` command as a user runs it: real processes, real files, exit codes and messages."""

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
        [sys.executable, "-m", "autoperi_cli.main", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )


def test_help_lists_commands():
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("data", "demo", "bench", "eval"):
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
