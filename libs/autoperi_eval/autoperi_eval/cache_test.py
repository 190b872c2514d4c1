"""Structure keys and the cached computation bookkeeping."""

import json

import numpy as np
from autoperi_data import CrystalArrays
from pymatgen.core import Lattice, Structure

from autoperi_eval import Cache, structure_key


def nacl() -> Structure:
    return Structure(Lattice.cubic(5.6), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def test_key_ignores_order_and_image_shifts_but_not_content() -> None:
    base = nacl()
    permuted = Structure(base.lattice, ["Cl", "Na"], [[0.5, 0.5, 0.5], [0, 0, 0]])
    shifted = Structure(base.lattice, ["Na", "Cl"], [[1, 0, -1], [0.5, 1.5, 0.5]])
    moved = Structure(base.lattice, ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.51]])
    assert structure_key(base) == structure_key(permuted) == structure_key(shifted)
    assert structure_key(base) != structure_key(moved)
    assert structure_key(base) == structure_key(CrystalArrays.from_pymatgen(base))


def test_cached_compute_counts_and_persists(tmp_path) -> None:
    calls = []

    def compute(items, before, total):
        calls.append(list(items))
        return [{"x": np.array(float(v))} for v in items]

    cache = Cache(tmp_path)
    out = cache.cached_compute("ns", "first", ["a", "b", "a"], [1, 2, 1], compute)
    assert [float(v["x"]) for v in out] == [1, 2, 1]
    assert calls == [[1, 2]]  # the duplicate key is computed once
    cache.close()
    again = Cache(tmp_path)
    out = again.cached_compute("ns", "second", ["b", "c"], [2, 3], compute)
    assert [float(v["x"]) for v in out] == [2, 3]
    assert calls[-1] == [3]
    assert (again.stats["second"].computed, again.stats["second"].cached) == (1, 1)
    memory = Cache(None)
    memory.cached_compute("ns", "m", ["a"], [1], compute)
    memory.cached_compute("ns", "m", ["a"], [1], compute)
    assert (memory.stats["m"].computed, memory.stats["m"].cached) == (1, 1)


def test_a_second_eval_command_computes_no_reference_fingerprint(
    load_split, tmp_path, monkeypatch
) -> None:
    """`autoperi eval` twice on one reference split, in a fresh cache: the second run takes every
    reference fingerprint from the cache (the samples differ, so theirs are computed again)."""
    from typer.testing import CliRunner

    from autoperi_eval import perturb, write_samples_json
    from autoperi_eval.cli import app

    monkeypatch.setenv("AUTOPERI_CACHE_DIR", str(tmp_path / "cache"))
    spec = "perov_5:test[200:212]"
    structures = [r.structure for r in load_split(spec)]
    out = tmp_path / "out"
    options = ["--reference", spec, "--no-energy", "--no-novelty", "--workers", "1", "--out"]
    reports = []
    for seed in (1, 2):
        samples = write_samples_json(
            perturb(structures, 0.05, 0.01, seed=seed), tmp_path / f"s{seed}.json"
        )
        name = f"run{seed}"
        result = CliRunner().invoke(app, ["eval", str(samples), "--name", name, *options, str(out)])
        assert result.exit_code == 0, result.output
        reports.append(json.loads((out / f"{name}.json").read_text())["cache"])
    n = len(structures)
    assert reports[0]["fingerprints reference"] == {"computed": n, "cached": 0}
    assert reports[1]["fingerprints reference"] == {"computed": 0, "cached": n}
    assert reports[1]["fingerprints samples"] == {"computed": n, "cached": 0}
