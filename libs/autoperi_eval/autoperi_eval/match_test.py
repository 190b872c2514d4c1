"""CSP matching: invariance of the RMS under the crystal's symmetries of description, and the
bookkeeping of the match-rate variants."""

import numpy as np
import pytest
from autoperi_data import CrystalArrays
from pymatgen.core import Lattice, Structure
from scipy.spatial.transform import Rotation

from autoperi_eval import match_metrics, rms_pair


def spinel_like() -> Structure:
    rng = np.random.default_rng(5)
    lattice = Lattice.from_parameters(5.1, 6.3, 7.2, 82, 97, 105)
    return Structure(lattice, ["Mg", "Al", "Al", "O", "O", "O", "O"], rng.random((7, 3)))


def redescribe(structure: Structure, seed: int) -> Structure:
    """Rotate, translate, permute and re-base (unimodular M) the same crystal."""
    rng = np.random.default_rng(seed)
    m = np.array([[1, 1, 0], [0, 1, 0], [1, 1, 1]])  # det = 1
    assert round(abs(np.linalg.det(m))) == 1
    q = Rotation.random(random_state=seed).as_matrix()
    lattice = m @ structure.lattice.matrix @ q.T  # L -> M L Q^T
    frac = (structure.frac_coords + rng.random(3)) @ np.linalg.inv(m)  # X -> (X + t) M^-1
    order = rng.permutation(len(structure))
    return Structure(
        Lattice(lattice), [structure.species[i] for i in order], np.mod(frac[order], 1)
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_same_crystal_in_another_description_matches_with_zero_rms(seed: int) -> None:
    structure = spinel_like()
    copy = redescribe(structure, seed)
    assert not np.allclose(copy.lattice.matrix, structure.lattice.matrix)
    assert rms_pair(
        (CrystalArrays.from_pymatgen(copy), CrystalArrays.from_pymatgen(structure))
    ) == pytest.approx(0.0, abs=1e-6)


def test_different_crystals_do_not_match() -> None:
    structure = spinel_like()
    other = Structure(structure.lattice, structure.species, np.random.default_rng(9).random((7, 3)))
    assert np.isnan(
        rms_pair((CrystalArrays.from_pymatgen(other), CrystalArrays.from_pymatgen(structure)))
    )


def test_match_metric_variants() -> None:
    # 3 ground truths; gt 0 invalid; candidates: (gt, rank, rms, pred valid)
    gt_of = np.array([0, 1, 2, 0, 1, 2])
    rank = np.array([0, 0, 0, 1, 1, 1])
    rms = np.array([0.1, np.nan, 0.3, 0.05, 0.2, np.nan])
    pred_valid = np.array([True, True, False, True, True, True])
    gt_valid = np.array([False, True, True])
    out = match_metrics(gt_of, rank, rms, pred_valid, gt_valid, n_gt=3)
    assert out["k1_gated"]["match_rate"] == 0.0  # gt 0 invalid, gt 1 unmatched, pred 2 invalid
    assert out["k1_cdvae"]["match_rate"] == pytest.approx(1 / 3)
    assert out["k1_ungated"]["match_rate"] == pytest.approx(2 / 3)
    assert out["k1_ungated"]["rmse"] == pytest.approx(0.2)
    assert out["k2"]["match_rate"] == pytest.approx(2 / 3)  # best valid: gt0 0.05, gt1 0.2
    assert out["k2"]["rmse"] == pytest.approx(0.125)
    assert out["k2_ungated"]["match_rate"] == 1.0
