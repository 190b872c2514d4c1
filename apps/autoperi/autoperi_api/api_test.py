"""The notebook surface: loading refuses a checkpoint of the wrong task with the reason; the
surface loads lazily."""

import subprocess
import sys
from pathlib import Path

import pytest

import autoperi_api as ap

CHECKPOINTS = Path(__file__).resolve().parents[3] / "checkpoints"


def test_load_refuses_a_checkpoint_of_another_task():
    with pytest.raises(ValueError, match=r"lattice/flow checkpoint .* cannot serve csp"):
        ap.load(CHECKPOINTS / "mp_20_lattice", task="csp")
    model = ap.load(CHECKPOINTS / "mp_20_lattice")
    assert model.tasks == {"lattice"} and "lattice/flow" in repr(model)
    with pytest.raises(ValueError, match="cannot serve csp"):
        model.predict(["NaCl"])


def test_importing_the_surface_loads_no_model_code():
    code = "import sys, autoperi_api; print('torch' in sys.modules, 'ray' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.split() == ["False", "False"], result.stderr
    assert sorted(ap.__all__) == sorted(["Crystal", "EvalReport", "Model", "Scores", "evaluate",
                                         "load", "score"])  # fmt: skip
