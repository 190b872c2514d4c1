"""Space-group backends against pymatgen's spglib analyzer, and the worker's symmetry cache."""

import numpy as np
import pytest
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from scorer_svc._bench import load_split
from scorer_svc._symmetry import SymmetryCache, space_group


@pytest.fixture(scope="module")
def structures(data_dir):
    """40 Perov-5 and 80 MP-20 test crystals."""
    return [c.to_pymatgen() for c in load_split("perov_5", 40) + load_split("mp_20", 80)]


@pytest.mark.parametrize("symprec", [0.1, 0.01])
def test_spglib_backend_is_pymatgens_analyzer(structures, symprec):
    rng = np.random.default_rng(0)
    noisy = [s.copy() for s in structures[::3]]
    for structure in noisy:  # displacements near the tolerance: the groups of generated cells
        structure.perturb(symprec, min_distance=0.0, seed=int(rng.integers(2**31)))
    groups = set()
    for structure in structures + noisy:
        analyzer = SpacegroupAnalyzer(structure, symprec=symprec)
        want = (analyzer.get_space_group_number(), analyzer.get_space_group_symbol())
        assert space_group(structure, symprec, "spglib") == want
        groups.add(want[0])
    assert 1 in groups and len(groups) >= 10


def test_moyopy_agrees_with_spglib_on_nearly_all(structures):
    spglib = [space_group(s, 0.1, "spglib") for s in structures]
    moyopy = [space_group(s, 0.1, "moyopy") for s in structures]
    same = sum(a == b for a, b in zip(spglib, moyopy, strict=True))
    assert same >= 0.97 * len(structures)  # 119 of 120 here; 99.3 % of all MP-20 test crystals
    assert len({number for number, _ in spglib}) >= 10  # many groups, not one that always agrees


def test_none_and_unknown_backends(structures):
    assert space_group(structures[0], 0.1, "none") == (0, "")
    with pytest.raises(ValueError, match="unknown symmetry backend 'spg'"):
        space_group(structures[0], 0.1, "spg")


def test_cache_is_used_only_with_a_key_and_is_bounded(structures):
    first, second = structures[0], structures[-1]
    want = [space_group(s, 0.1, "spglib") for s in (first, second)]
    assert 0 < want[0][0] != want[1][0]
    cache = SymmetryCache(size=1)
    cache.space_group(first, 0.1, "spglib", "h1")  # stored under h1
    assert cache.space_group(second, 0.1, "spglib", "h1") == want[0]  # served: first's group
    assert cache.space_group(second, 0.1, "moyopy", "h1") == want[1]  # another backend
    assert cache.space_group(second, 0.01, "spglib", "h1")[0] == want[1][0]  # another symprec
    assert cache.space_group(second, 0.1, "spglib") == want[1]  # no key: computed
    assert len(cache) == 1  # bounded: the oldest entries went
    off = SymmetryCache(size=0)
    assert off.space_group(first, 0.1, "spglib", "h1") == want[0] and len(off) == 0
