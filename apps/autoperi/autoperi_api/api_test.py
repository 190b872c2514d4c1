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


def test_predict_split_gives_each_row_its_own_best_template(data_dir):
    """Two test rows of one cell (6-atom MoS2, mp_20 test rows 3725 and 3727) are two independent
    k = 1 queries: both get the best template; with n = 2 each gets the best two."""
    model = ap.load(CHECKPOINTS / "mp_20_templates")
    one = model.predict_split("mp_20:test[3725:3728]")
    assert [c.properties["gt_index"] for c in one] == [3725.0, 3726.0, 3727.0]
    assert one[0].formula == one[2].formula == "MoS2" and one[0].num_atoms == one[2].num_atoms
    assert one[0].properties["template"] == one[2].properties["template"]
    two = [c.properties["template"] for c in model.predict_split("mp_20:test[3725:3728]", n=2)]
    assert two[:2] == two[4:] and two[0] != two[1]


def test_generate_honours_a_chemical_system_required_elements_and_a_space_group():
    """The ion-exchange baseline through the notebook surface; a checkpoint that cannot take a
    space group says so."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    model = ap.load(CHECKPOINTS / "mp_20_ion_exchange")
    crystals = model.generate(6, seed=1, elements=["Li", "Fe", "P", "O"], required=["Li"],
                              space_group=62)  # fmt: skip
    assert len(crystals) == 6
    for crystal in crystals:
        structure = crystal.to_pymatgen()
        elements = {el.symbol for el in structure.composition.elements}
        assert "Li" in elements and elements <= {"Li", "Fe", "P", "O"}, elements
        assert SpacegroupAnalyzer(structure, symprec=0.1).get_space_group_number() == 62
    with pytest.raises(ValueError, match="symmetry"):
        ap.load(CHECKPOINTS / "mp_20_dng").generate(1, steps=2, space_group=62)
