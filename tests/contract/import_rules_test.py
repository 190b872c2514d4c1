"""The layering contracts (import-linter, pyproject.toml) hold for the repository, and each one
fails when a violating import is planted in a temporary copy of a package that shadows the real
one on the path."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT = Path(sys.executable).with_name("lint-imports")
PACKAGES = {
    "periodic": ROOT / "libs" / "periodic" / "periodic",
    "xtal": ROOT / "libs" / "xtal" / "xtal",
    "autoperi_app": ROOT / "apps" / "autoperi" / "autoperi_app",
}


def lint(shadow: Path | None = None) -> subprocess.CompletedProcess:
    """`lint-imports` over the repository, with the packages under `shadow` first on the path."""
    env = dict(os.environ)
    if shadow is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(shadow), env.get("PYTHONPATH", "")])
    command = [str(LINT), "--no-logo", "--no-cache", "--config", str(ROOT / "pyproject.toml")]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_the_repository_keeps_every_contract():
    result = lint()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("package", "planted", "contract"),
    [
        ("periodic", "import ray", "never import Ray, gRPC or storage"),
        ("xtal", "import storage", "never import Ray, gRPC or storage"),
        ("xtal", "import scorer_svc", "Libraries never import services"),
        ("autoperi_app", "from autoperi_eval import _chgnet", "private (underscore) module"),
    ],
)
def test_a_planted_violation_breaks_its_contract(tmp_path, package, planted, contract):
    copy = tmp_path / package
    shutil.copytree(PACKAGES[package], copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert lint(tmp_path).returncode == 0  # the unchanged copy keeps every contract
    (copy / "planted.py").write_text(f'"""A violation planted by a test."""\n\n{planted}\n')
    result = lint(tmp_path)
    assert result.returncode == 1, result.stdout
    assert f"{package}.planted" in result.stdout
    broken = [line for line in result.stdout.splitlines() if line.endswith("BROKEN")]
    assert any(contract in line for line in broken), result.stdout
