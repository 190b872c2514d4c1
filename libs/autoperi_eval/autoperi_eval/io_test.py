"""Sample formats, reference specifications and ground-truth assignment."""

import json

import numpy as np
import pytest
from ase import Atoms
from ase.io import write as ase_write
from pymatgen.core import Lattice, Structure

from autoperi_eval import EvalInputError, load_samples, parse_reference, write_samples_json
from autoperi_eval._csp import assign_ground_truth, candidate_rank
from autoperi_eval._structs import SampleRecord


def test_parse_reference() -> None:
    spec = parse_reference("mp_20:test[:300]")
    assert (spec.dataset, spec.split, spec.start, spec.stop) == ("mp_20", "test", None, 300)
    assert str(parse_reference("perov_5:test")) == "perov_5:test"
    assert str(spec) == "mp_20:test[:300]"
    with pytest.raises(EvalInputError, match="unknown dataset"):
        parse_reference("qm9:test")
    with pytest.raises(EvalInputError, match="form"):
        parse_reference("perov_5")


def test_json_round_trip(tmp_path) -> None:
    s = Structure(
        Lattice.cubic(4.0),
        ["Sr", "Ti", "O", "O", "O"],
        [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
    )
    path = write_samples_json(
        [s, s], tmp_path / "s.json", ids=["a", "b"], properties=[{"gt_index": 3.0}, {}]
    )
    records = load_samples(path)
    assert [r.id for r in records] == ["a", "b"]
    assert records[0].gt_index == 3 and records[1].gt_index is None
    assert records[0].structure.matches(s)
    items = json.loads(path.read_text())
    items[1]["lattice"][0][0] = float("nan")
    items[1]["gt_id"] = "mp-1"
    path.write_text(json.dumps(items))
    records = load_samples(path)
    assert not records[1].constructed and records[1].reason == "nan_value"
    assert records[1].gt_id == "mp-1"


def test_cif_directory_and_extxyz(tmp_path) -> None:
    s = Structure(Lattice.cubic(5.6), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    (tmp_path / "cifs").mkdir()
    s.to(filename=str(tmp_path / "cifs" / "gt12_0.cif"))
    (tmp_path / "cifs" / "broken.cif").write_text("data_x\n_cell_length_a 1\n")
    records = load_samples(tmp_path / "cifs")
    assert len(records) == 2
    broken, good = records
    assert not broken.constructed and good.constructed and good.gt_index == 12
    atoms = Atoms(
        "NaCl", scaled_positions=[[0, 0, 0], [0.5, 0.5, 0.5]], cell=np.eye(3) * 5.6, pbc=True
    )
    atoms.info["gt_id"] = "mp-22862"
    ase_write(tmp_path / "s.extxyz", [atoms, atoms])
    records = load_samples(tmp_path / "s.extxyz")
    assert len(records) == 2 and records[0].gt_id == "mp-22862"
    assert records[0].structure.matches(s)
    with pytest.raises(EvalInputError):
        load_samples(tmp_path / "missing.json")


def test_ground_truth_assignment() -> None:
    def rec(i, gt_index=None, gt_id=None):
        return SampleRecord(i, str(i), None, np.zeros(0, np.int64), gt_index=gt_index, gt_id=gt_id)

    ref = [SampleRecord(row, f"mp-{row}", None, np.zeros(0, np.int64)) for row in (10, 11, 12)]
    samples = [rec(0, gt_index=12), rec(1, gt_id="mp-10"), rec(2, gt_index=99), rec(3, gt_index=12)]
    gt = assign_ground_truth(samples, ref)
    np.testing.assert_array_equal(gt, [2, 0, -1, 2])
    np.testing.assert_array_equal(candidate_rank(gt), [0, 0, 0, 1])
    positional = assign_ground_truth([rec(i) for i in range(6)], ref)
    np.testing.assert_array_equal(positional, [0, 1, 2, 0, 1, 2])
    with pytest.raises(EvalInputError, match="passes"):
        assign_ground_truth([rec(i) for i in range(4)], ref)


def test_scorer_json_output_loads_as_samples(tmp_path) -> None:
    lattice = (np.eye(3) * 4.0).tolist()
    rows = [
        {"index": 0, "lattice": lattice, "frac_coords": [[0, 0, 0]], "atomic_numbers": [29]},
        {"index": 1, "lattice": lattice, "frac_coords": [[0.5] * 3], "atomic_numbers": [26]},
    ]
    path = tmp_path / "scores.json"
    path.write_text(json.dumps({"results": rows}))
    records = load_samples(path)
    assert [r.structure.composition.reduced_formula for r in records] == ["Cu", "Fe"]
