"""Structure keys and the cached computation bookkeeping."""

import numpy as np
from pymatgen.core import Lattice, Structure

from autoperi_eval import Cache, structure_key, to_payload


def nacl() -> Structure:
    return Structure(Lattice.cubic(5.6), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def test_key_ignores_order_and_image_shifts_but_not_content() -> None:
    base = nacl()
    permuted = Structure(base.lattice, ["Cl", "Na"], [[0.5, 0.5, 0.5], [0, 0, 0]])
    shifted = Structure(base.lattice, ["Na", "Cl"], [[1, 0, -1], [0.5, 1.5, 0.5]])
    moved = Structure(base.lattice, ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.51]])
    assert structure_key(base) == structure_key(permuted) == structure_key(shifted)
    assert structure_key(base) != structure_key(moved)
    assert structure_key(base) == structure_key(to_payload(base))


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
