"""Round trips through every format on real crystals, and the content hash on real data.

Chain: Crystal -> pymatgen -> CIF -> Crystal -> proto -> Crystal -> ASE -> Crystal. CIF stores cell
parameters, not the matrix, so lattices are compared by their metric L L^T (rotation-free);
fractional coordinates are compared modulo 1 (CIF reading wraps them).
"""

import collections
import itertools
from pathlib import Path

import autoperi_data
import numpy as np
import pytest
import xtal
from pymatgen.analysis.structure_matcher import StructureMatcher
from scipy.spatial.transform import Rotation
from xtal import Crystal

convert = pytest.importorskip("xtal.convert")
pytest.importorskip("autoperi.crystal.v1.crystal_pb2", reason="run `make protos` first")

SAMPLE = {"perov_5/test.csv": 300, "mp_20/assembled/test.csv": 500, "carbon_24/test.csv": 200}
TEST_SPLITS = ("perov_5/test.csv", "mp_20/assembled/test.csv", "carbon_24/test.csv")
TOLERANCE = 1e-8


@pytest.fixture(scope="module")
def crystals(data_dir: Path) -> list[Crystal]:
    """1,000 real crystals: the first rows of each test split, half of them canonicalised."""
    out = []
    for relative, count in SAMPLE.items():
        records = itertools.islice(
            autoperi_data.read_records(data_dir / relative, source=relative), count
        )
        out.extend(record.crystal for record in records)
    return [c.canonical() if i % 2 else c for i, c in enumerate(out)]


def chain(crystal: Crystal) -> list[Crystal]:
    """The crystal after each leg of the round trip."""
    via_pymatgen = Crystal.from_pymatgen(crystal.to_pymatgen())
    via_cif = Crystal.from_cif(via_pymatgen.to_cif())
    via_proto = convert.from_proto(convert.to_proto(via_cif))
    via_ase = Crystal.from_ase(via_proto.to_ase())
    return [via_pymatgen, via_cif, via_proto, via_ase]


def assert_same(a: Crystal, b: Crystal) -> None:
    metric_a, metric_b = a.lattice @ a.lattice.T, b.lattice @ b.lattice.T
    scale = np.abs(metric_a).max()
    assert np.abs(metric_a - metric_b).max() <= TOLERANCE * scale, a.id
    delta = a.frac_coords - b.frac_coords
    assert np.abs(delta - np.rint(delta)).max() <= TOLERANCE, a.id
    assert a.atomic_numbers.tolist() == b.atomic_numbers.tolist(), a.id
    assert (a.id, dict(a.properties)) == (b.id, dict(b.properties)), a.id


def test_sample_is_real_and_mixed(crystals):
    assert len(crystals) == 1000
    assert len({c.provenance.source for c in crystals}) == 3
    assert all(c.properties for c in crystals)


def test_round_trip_through_all_formats(crystals):
    for crystal in crystals:
        via_pymatgen, via_cif, via_proto, via_ase = chain(crystal)
        assert via_pymatgen == crystal.replace(provenance=xtal.Provenance())  # exact
        assert via_proto == via_cif  # exact
        assert_same(crystal, via_cif)
        assert_same(crystal, via_ase)
        assert via_ase.content_hash() == crystal.content_hash(), crystal.id


def test_hash_is_equal_for_permuted_moved_rotated_copies(crystals):
    rng = np.random.default_rng(0)
    for crystal in crystals[::4]:
        order = rng.permutation(crystal.num_atoms)
        rotation = Rotation.random(random_state=int(rng.integers(1 << 31))).as_matrix()
        copy = crystal.replace(
            lattice=crystal.lattice @ rotation.T,
            frac_coords=crystal.frac_coords[order] + rng.random(3),
            atomic_numbers=crystal.atomic_numbers[order],
        )
        assert copy.content_hash() == crystal.content_hash(), crystal.id


def test_hashes_of_the_sample_are_distinct(crystals):
    hashes = {c.content_hash() for c in crystals[::2]}  # the uncanonicalised half: 500 crystals
    assert len(hashes) == 500


@pytest.mark.slow
@pytest.mark.parametrize("relative", TEST_SPLITS)
def test_distinct_test_split_crystals_have_distinct_hashes(data_dir, relative):
    """Every hash collision in a whole test split must be a genuine duplicate (pymatgen's
    StructureMatcher with tight tolerances says so); none was found when this was written."""
    groups = collections.defaultdict(list)
    for record in autoperi_data.read_records(data_dir / relative):
        groups[record.crystal.content_hash()].append(record.crystal)
    matcher = StructureMatcher(ltol=1e-3, stol=1e-3, angle_tol=0.1, primitive_cell=False)
    for group in groups.values():
        for other in group[1:]:
            assert matcher.fit(group[0].to_pymatgen(), other.to_pymatgen()), (group[0].id, other.id)
