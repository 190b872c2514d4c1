"""CHGNet scoring in worker processes against CHGNet run in this process (slow: loads the model)."""

import numpy as np
import pytest
from autoperi_data import CrystalArrays

from autoperi_eval import Cache
from autoperi_eval._chgnet import RelaxSettings, Scorer


@pytest.mark.slow
def test_scorer_matches_direct_chgnet(load_split) -> None:
    from chgnet.model import CHGNet

    structures = [r.structure for r in load_split("perov_5:test[:6]")]
    scorer = Scorer(Cache(None), n_workers=1, batch_size=4)
    try:
        energies, features = scorer.single_point(
            [CrystalArrays.from_pymatgen(s) for s in structures], "t"
        )
        relaxed, steps = scorer.relax(
            [CrystalArrays.from_pymatgen(s) for s in structures[:2]],
            RelaxSettings(steps=20, fmax=0.1),
            "r",
        )
    finally:
        scorer.close()
    model = CHGNet.load(verbose=False)
    direct = model.predict_structure(structures, task="e", return_crystal_feas=True)
    np.testing.assert_allclose(energies, [float(p["e"]) for p in direct], atol=1e-5)
    np.testing.assert_allclose(features, np.stack([p["crystal_fea"] for p in direct]), atol=1e-4)
    assert features.shape == (6, 64)
    assert relaxed.mean() < energies[:2].mean()  # the bounded relaxation lowers the energy
    assert ((steps >= 0) & (steps <= 20)).all()


@pytest.mark.slow
def test_dng_with_energy_stability_and_novelty(load_split, data_dir, tmp_path) -> None:
    """The whole DNG path on a few perturbed test crystals (hull, novelty: train+val)."""
    from autoperi_eval import EvalSettings, evaluate, perturb

    records = load_split("perov_5:test[:24]")
    samples = perturb([r.structure for r in records], 0.05, 0.01, seed=3)
    settings = EvalSettings(relax_samples=2, relax_steps=5, data_dir=data_dir, n_workers=2)
    report = evaluate(
        samples, "perov_5:test[:24]", "dng", "e2e", settings=settings, out_dir=tmp_path
    )
    stab, beyond = report.metrics["stability"], report.metrics["beyond"]
    assert stab["relax_n"] == 2 and 0 <= stab["relax_mean_steps"] <= 5
    assert stab["hull_reference_scored_sp"] > 0
    assert np.isfinite(report.metrics["properties"]["wdist_energy"])
    assert 0.0 <= beyond["novel"] <= 1.0 and beyond["unique"] == 1.0
    assert (tmp_path / "e2e_energy.png").is_file()
