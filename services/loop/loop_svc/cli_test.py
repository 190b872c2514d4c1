"""`autoperi loop`: mounted on the CLI, and a bad plan is a usage error with a reason (before
any service is called)."""

import subprocess
import sys
from pathlib import Path

import typer
from typer.testing import CliRunner

from loop_svc.cli import COMMANDS


def test_loop_is_a_top_level_command_of_autoperi():
    autoperi = Path(sys.executable).parent / "autoperi"
    result = subprocess.run(
        [str(autoperi), "loop", "--help"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "--loop-id" in result.stdout and "resume" in result.stdout.lower()


def test_a_bad_plan_is_a_usage_error_with_a_reason(tmp_path):
    app = typer.Typer()
    app.command()(COMMANDS["loop"])
    args = ["--dataset", "d", "--targets", "SrTiO3", "--state-dir", str(tmp_path)]
    result = CliRunner().invoke(app, [*args, "--rounds", "0"])
    assert result.exit_code == 2
    assert "num_rounds must be at least 1" in result.output
    result = CliRunner().invoke(app, [*args, "--batch-size", "15", "--workers", "2"])
    assert result.exit_code == 2 and "multiple of num_workers" in result.output
    assert not list(tmp_path.iterdir())  # nothing was started
