"""Canonical cell against pymatgen, wrapping edge cases, and the content hash's invariances."""

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure
from scipy.spatial.transform import Rotation

from xtal import Crystal, CrystalError
from xtal._canonical import niggli_cell, wrap_unit


def random_crystal(seed: int, n: int = 6) -> Crystal:
    rng = np.random.default_rng(seed)
    lattice = np.eye(3) * rng.uniform(3, 7) + rng.normal(scale=1.2, size=(3, 3))
    numbers = rng.choice([8, 14, 26, 38], size=n)
    return Crystal(lattice, rng.uniform(-1, 2, size=(n, 3)), numbers)


def random_unimodular(rng: np.random.Generator) -> np.ndarray:
    """A random integer matrix with det +-1 (products of shears, a permutation and signs)."""
    matrix = np.eye(3)
    for _ in range(6):
        i, j = rng.choice(3, size=2, replace=False)
        shear = np.eye(3)
        shear[i, j] = rng.choice([-1, 1])
        matrix = shear @ matrix
    return np.diag(rng.choice([-1, 1], size=3)) @ matrix[rng.permutation(3)]


def test_wrap_unit_edge_cases():
    values = np.array([[-1e-17, 1 - 1e-17, -0.0], [1.0, 2.5, -0.25], [-2.0, 0.999999999, 1e-300]])
    wrapped = wrap_unit(values)
    assert np.all((wrapped >= 0) & (wrapped < 1))
    np.testing.assert_array_equal(wrapped[1], [0.0, 0.5, 0.75])
    assert wrapped[0, 0] == 0.0 and wrapped[0, 1] < 1.0 and not np.signbit(wrapped[0, 2])
    np.testing.assert_allclose(wrapped - values, np.rint(wrapped - values), atol=1e-12)


@pytest.mark.parametrize("seed", range(25))
def test_niggli_cell_matches_pymatgen_get_reduced_structure(seed):
    crystal = random_crystal(seed)
    structure = Structure(Lattice(crystal.lattice), crystal.atomic_numbers, crystal.frac_coords)
    reference = structure.get_reduced_structure()
    lattice, frac = niggli_cell(crystal.lattice, crystal.frac_coords)
    np.testing.assert_allclose(lattice, reference.lattice.matrix, atol=1e-9)
    delta = frac - reference.frac_coords
    np.testing.assert_allclose(delta, np.rint(delta), atol=1e-9)
    assert np.all((frac >= 0) & (frac < 1))


@pytest.mark.parametrize(
    ("lattice", "code"),
    [(np.diag([4.0, 4.0, 0.0]), "small_volume"), (np.diag([4.0, np.nan, 4.0]), "non_finite")],
)
def test_degenerate_lattices_have_no_canonical_form(lattice, code):
    crystal = Crystal(lattice, [[0, 0, 0]], [6])
    for method in (crystal.canonical, crystal.content_hash):
        with pytest.raises(CrystalError) as info:
            method()
        assert info.value.code == code


def test_canonical_keeps_identity_order_and_is_idempotent():
    crystal = random_crystal(3).replace(id="x", properties={"e": 1.0})
    canonical = crystal.canonical()
    assert (canonical.id, dict(canonical.properties)) == ("x", {"e": 1.0})
    np.testing.assert_array_equal(canonical.atomic_numbers, crystal.atomic_numbers)
    assert np.linalg.det(canonical.lattice) > 0
    assert canonical.volume == pytest.approx(crystal.volume, rel=1e-12)
    again = canonical.canonical()
    np.testing.assert_allclose(again.lattice, canonical.lattice, atol=1e-12)
    np.testing.assert_allclose(again.frac_coords, canonical.frac_coords, atol=1e-12)


def _transformations(rng: np.random.Generator):
    """Changes that leave the physical crystal unchanged (SCIENCE.md section 1)."""
    rotation = Rotation.random(random_state=rng.integers(1 << 31)).as_matrix()

    def permute(c):
        order = rng.permutation(c.num_atoms)
        return c.replace(frac_coords=c.frac_coords[order], atomic_numbers=c.atomic_numbers[order])

    def change_basis(c):
        m = random_unimodular(rng)
        return c.replace(lattice=m @ c.lattice, frac_coords=c.frac_coords @ np.linalg.inv(m))

    return {
        "permutation": permute,
        "rotation": lambda c: c.replace(lattice=c.lattice @ rotation.T),
        "reflection": lambda c: c.replace(lattice=c.lattice @ np.diag([1.0, 1.0, -1.0])),
        "translation": lambda c: c.replace(frac_coords=c.frac_coords + rng.random(3)),
        "image_shift": lambda c: c.replace(
            frac_coords=c.frac_coords + rng.integers(-2, 3, size=c.frac_coords.shape)
        ),
        "change_of_basis": change_basis,
        "noise_1e-11": lambda c: c.replace(
            lattice=c.lattice + rng.normal(scale=1e-11, size=(3, 3)),
            frac_coords=c.frac_coords + rng.normal(scale=1e-11, size=c.frac_coords.shape),
        ),
        "canonical": lambda c: c.canonical(),
        "metadata": lambda c: c.replace(id="other", properties={"e": 3.0}),
    }


@pytest.mark.parametrize("name", list(_transformations(np.random.default_rng(0))))
@pytest.mark.parametrize("seed", range(8))
def test_content_hash_is_invariant(name, seed):
    rng = np.random.default_rng(seed)
    crystal = random_crystal(seed)
    transformed = _transformations(rng)[name](crystal)
    assert transformed.content_hash() == crystal.content_hash()


def test_content_hash_is_invariant_for_a_symmetric_cell_in_many_bases():
    """Rock salt in its primitive fcc cell: many Niggli-equivalent bases (48 automorphisms)."""
    a = 5.64 / 2
    lattice = np.array([[0, a, a], [a, 0, a], [a, a, 0]])
    crystal = Crystal(lattice, [[0, 0, 0], [0.5, 0.5, 0.5]], [11, 17])
    rng = np.random.default_rng(5)
    for _ in range(20):
        m = random_unimodular(rng)
        shift = rng.random(3)
        other = crystal.replace(
            lattice=m @ lattice, frac_coords=crystal.frac_coords @ np.linalg.inv(m) + shift
        )
        assert other.content_hash() == crystal.content_hash()


def test_content_hash_distinguishes_different_crystals():
    crystal = random_crystal(11)
    moved = crystal.frac_coords.copy()
    moved[0, 0] += 1e-3
    variants = [
        crystal.replace(frac_coords=moved),
        crystal.replace(
            atomic_numbers=np.where(crystal.atomic_numbers == 8, 9, crystal.atomic_numbers)
        ),
        crystal.replace(lattice=crystal.lattice * 1.001),
        Crystal(  # a 2x1x1 supercell is a different record
            crystal.lattice * np.array([[2], [1], [1]]),
            np.concatenate([crystal.frac_coords, crystal.frac_coords + np.array([1, 0, 0])])
            * [0.5, 1, 1],
            np.concatenate([crystal.atomic_numbers] * 2),
        ),
    ]
    hashes = {crystal.content_hash(), *(v.content_hash() for v in variants)}
    assert len(hashes) == 1 + len(variants)
    assert all(len(h) == 64 and int(h, 16) >= 0 for h in hashes)


def test_content_hash_treats_mirror_images_as_equal():
    """Reflections are symmetries of the description (SCIENCE.md: O(3)), so a mirrored copy
    has the same hash, here made by inverting the fractional coordinates."""
    crystal = random_crystal(13)
    inverted = crystal.replace(frac_coords=-crystal.frac_coords)
    assert inverted.content_hash() == crystal.content_hash()


def test_content_hash_survives_pymatgen_niggli_ambiguity():
    """Two right angles and one of 89.57 degrees (as mp-1221692): pymatgen's tolerant Niggli
    reduction returns beta = 89.57 or 90.43 depending on the cell it starts from."""
    start = Lattice.from_parameters(6.242673, 6.184931, 6.25732985, 89.56801564, 90, 90).matrix
    crystal = random_crystal(21).replace(lattice=start).canonical()
    rotated = Lattice.from_parameters(*Lattice(crystal.lattice).parameters).matrix  # as CIF does
    other = crystal.replace(lattice=rotated)
    betas = [Lattice(niggli_cell(c.lattice, c.frac_coords)[0]).beta for c in (crystal, other)]
    assert betas[0] < 90 < betas[1]  # the ambiguity is real
    assert other.content_hash() == crystal.content_hash()


def test_content_hash_is_invariant_for_float32_coordinates():
    """A generator's float32 coordinates lie on a binary grid: 2^17 x is often exactly k + 1/2,
    where a quantiser that rounds to nearest flips on the 1e-16 error of a change of basis."""
    rng = np.random.default_rng(7)
    changed = []
    for seed in range(100):
        crystal = random_crystal(seed, n=10)
        crystal = crystal.replace(
            lattice=crystal.lattice.astype(np.float32).astype(np.float64),
            frac_coords=rng.random((10, 3)).astype(np.float32).astype(np.float64),
        )
        structure = crystal.to_pymatgen()
        structure.make_supercell(random_unimodular(rng).astype(int))  # pymatgen's float maths
        other = Crystal(structure.lattice.matrix, structure.frac_coords, structure.atomic_numbers)
        changed.append(other.content_hash() != crystal.content_hash())
    assert sum(changed) == 0
