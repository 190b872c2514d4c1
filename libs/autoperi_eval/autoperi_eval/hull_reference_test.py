"""Hull reference files: reading, protocol checks, and the same E_hull as scoring the reference."""

import json

import numpy as np
import pytest
from autoperi_data import CrystalArrays

from autoperi_eval import (
    Cache,
    EvalSettings,
    HullReference,
    RelaxSettings,
    cached_rows,
    evaluate,
    hull_document,
    perturb,
    potential_protocol,
    reference_rows,
    seed_relaxations,
    write_json_document,
)
from autoperi_eval._hull import relevant_entries

ROWS = [
    {"crystal_hash": "a", "formula": "Li1", "energy_per_atom": -1.9,
     "energy_per_atom_single_point": -1.8, "relax_steps": 3},
    {"crystal_hash": "b", "formula": "O2", "error": "not scorable by the potential"},
    {"crystal_hash": "c", "formula": "Li2 O1", "energy_per_atom": -4.7,
     "energy_per_atom_single_point": -4.6, "relax_steps": 7},
]  # fmt: skip


@pytest.mark.parametrize("name", ["hull.json", "hull.json.gz"])
def test_a_hull_reference_file_is_read_and_its_protocol_checked(tmp_path, name):
    path = tmp_path / name
    protocol = potential_protocol(RelaxSettings(100, 0.1))
    write_json_document(hull_document(ROWS, protocol, ["mp_20/train@abc"]), path)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")
    reference = HullReference.read(path)
    assert [c.reduced_formula for c in reference.compositions] == ["Li", "Li2O"]
    np.testing.assert_allclose(reference.e_relaxed, [-1.9, -4.7])
    np.testing.assert_allclose(reference.e_single_point, [-1.8, -4.6])
    assert reference.sources == ("mp_20/train@abc",)
    reference.check_protocol(RelaxSettings(100, 0.1))
    with pytest.raises(ValueError, match="scored with"):
        reference.check_protocol(RelaxSettings(5, 0.1))


@pytest.mark.parametrize(
    "text",
    ["not json", json.dumps({"results": []}), json.dumps({"format": "x", "results": ROWS})],
)
def test_what_is_not_a_hull_reference_is_refused_by_name(tmp_path, text):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=r"bad\.json is not a hull reference file"):
        HullReference.read(path)


@pytest.mark.slow
def test_a_hull_reference_file_gives_the_e_hull_of_scoring_the_reference(
    load_split, data_dir, tmp_path
):
    """Evaluating with a file made by `reference_rows` from the reference entries under the
    samples equals evaluating with the reference scored in the run, single point and relaxed."""
    samples = perturb([r.structure for r in load_split("perov_5:test[:24]")], 0.05, 0.01, seed=3)
    relax = RelaxSettings(steps=5, fmax=0.1)
    settings = EvalSettings(
        relax_samples=4, relax_steps=relax.steps, data_dir=data_dir, n_workers=2, plots=False
    )
    scored = evaluate(samples, "perov_5:test[:24]", "dng", "scored", settings=settings,
                      out_dir=tmp_path)  # fmt: skip
    pool = load_split("perov_5:train") + load_split("perov_5:val")
    wanted = relevant_entries(
        [r.structure.composition for r in pool], [s.composition for s in samples]
    )
    crystals = [CrystalArrays.from_pymatgen(pool[i].structure) for i in wanted]
    rows = reference_rows(crystals, [pool[i].id for i in wanted], relax=relax, n_workers=1)
    path = tmp_path / "hull.json"
    path.write_text(json.dumps(hull_document(rows, potential_protocol(relax), ["perov_5 test"])))
    filed = evaluate(samples, "perov_5:test[:24]", "dng", "filed",
                     settings=settings.replace(hull_file=path), out_dir=tmp_path)  # fmt: skip
    for column in ("e_hull_sp", "e_hull_relaxed"):
        np.testing.assert_allclose(
            filed.columns[column], scored.columns[column], atol=1e-6, equal_nan=True
        )
    assert np.isfinite(scored.columns["e_hull_sp"]).sum() > 0
    scorable = [row for row in rows if "error" not in row]
    assert filed.metrics["stability"]["hull_reference_scored_sp"] == len(scorable) > 0


def test_seeded_relaxations_come_back_as_a_partial_reference_that_is_no_hull(load_split, tmp_path):
    crystals = [CrystalArrays.from_pymatgen(r.structure) for r in load_split("perov_5:test[:6]")]
    hashes = [f"h{i}" for i in range(6)]
    rows = [
        {"crystal_hash": f"h{i}", "formula": "x", "energy_per_atom": -5.0 - i,
         "energy_per_atom_single_point": -4.9 - i, "relax_steps": i}
        for i in (0, 2, 3)
    ] + [{"crystal_hash": "h4", "formula": "x", "error": "not scorable"}]  # fmt: skip
    cache = Cache(None)
    assert seed_relaxations(crystals, hashes, rows, cache) == 3
    found = cached_rows(crystals, hashes, cache)
    assert [r["crystal_hash"] for r in found] == ["h0", "h2", "h3"]
    assert [(r["energy_per_atom"], r["relax_steps"]) for r in found] == [
        (-5.0, 0), (-7.0, 2), (-8.0, 3)
    ]  # fmt: skip
    path = tmp_path / "partial.json"
    protocol = potential_protocol(RelaxSettings())
    write_json_document(hull_document(found, protocol, ["perov_5 test"], expected=6), path)
    with pytest.raises(ValueError, match=r"partial \(3 of 6 crystals\)"):
        HullReference.read(path)


@pytest.mark.slow
def test_a_build_seeded_with_its_own_relaxations_relaxes_nothing(load_split):
    crystals = [CrystalArrays.from_pymatgen(r.structure) for r in load_split("perov_5:test[:4]")]
    hashes = [f"h{i}" for i in range(4)]
    relax = RelaxSettings(steps=5, fmax=0.1)
    first = reference_rows(crystals, hashes, relax=relax, n_workers=1)
    cache = Cache(None)
    seed_relaxations(crystals, hashes, first, cache, relax)
    again = reference_rows(crystals, hashes, relax=relax, cache=cache, n_workers=1)
    assert [r["energy_per_atom"] for r in again] == [r["energy_per_atom"] for r in first]
    assert cache.stats["reference relaxations"].computed == 0
