"""`autoperi loop`: mounted on the CLI, de novo and yield flags make their spec, and a bad plan
is a usage error with a reason (before any service is called)."""

import inspect
import subprocess
import sys
from pathlib import Path

import typer
from typer.testing import CliRunner

from loop_svc import ChemicalSpace
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


def test_de_novo_flags_make_a_chemical_space_loop_judged_by_its_yield():
    from loop_svc.cli import _spec, loop

    args = {n: p.default for n, p in inspect.signature(loop).parameters.items()}
    args.update(
        dataset="d", chemical_space="Mg, Rh,N", required_elements="Rh", max_atoms=10,
        objective="sun_yield", yield_samples=200, confidence=0.9, samples_per_target=5,
    )  # fmt: skip
    spec = _spec(args)
    space = ChemicalSpace(("Mg", "Rh", "N"), ("Rh",), 0, 10)
    assert spec.targets == () and spec.chemical_space == space
    assert spec.base_checkpoint == "checkpoints/perov_5_dng" and spec.samples_per_target == 5
    evaluation = spec.evaluation
    assert evaluation.sun_yield and (evaluation.yield_samples, evaluation.confidence) == (200, 0.9)


def test_bad_de_novo_and_yield_flags_are_usage_errors(tmp_path):
    app = typer.Typer()
    app.command()(COMMANDS["loop"])
    args = ["--dataset", "d", "--state-dir", str(tmp_path)]
    for extra, reason in [
        (["--targets", "SrTiO3", "--chemical-space", "Mg,N"], "not both"),
        (["--chemical-space", "Mg,N"], "needs the sun_yield objective"),
        (
            ["--chemical-space", "Mg,N", "--objective", "sun_yield", "--required-elements", "O"],
            "not in allowed_elements",
        ),
        (["--targets", "SrTiO3", "--objective", "sun_yield", "--confidence", "1.5"], "confidence"),
        (["--targets", "SrTiO3", "--objective", "best"], "objective"),
    ]:
        result = CliRunner().invoke(app, [*args, *extra], env={"COLUMNS": "300"})
        assert result.exit_code == 2 and reason in result.output, (extra, result.output)
    assert not list(tmp_path.iterdir())  # nothing was started
