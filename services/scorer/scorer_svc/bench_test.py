"""`autoperi bench score` inputs: a directory of CIF files as a workload, and its refusals."""

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from scorer_svc import cli
from scorer_svc._bench import load_cif_dir, load_split


def test_cif_dir_reads_crystals_in_name_order_up_to_n(data_dir, tmp_path):
    crystals = load_split("mp_20", 5)
    for i, crystal in reversed(list(enumerate(crystals))):  # written out of order
        (tmp_path / f"{i:03d}.cif").write_text(crystal.to_cif())
    (tmp_path / "notes.txt").write_text("not a CIF")
    loaded = load_cif_dir(tmp_path, 4)
    assert len(loaded) == 4
    for got, want in zip(loaded, crystals, strict=False):
        assert np.array_equal(got.atomic_numbers, want.atomic_numbers)
        np.testing.assert_allclose(got.lattice, want.lattice, atol=1e-5)
        np.testing.assert_allclose(got.frac_coords, want.frac_coords, atol=1e-5)
    assert len(load_cif_dir(tmp_path, 50)) == 5


def test_directory_without_crystals_is_refused(tmp_path):
    with pytest.raises(ValueError, match="no readable crystals"):
        load_cif_dir(tmp_path, 10)
    app = typer.Typer()
    app.command()(cli.bench_score)
    refused = CliRunner().invoke(app, ["--samples", str(tmp_path), "--out", str(tmp_path)])
    assert refused.exit_code == 2 and "no readable crystals" in refused.output
    assert not (tmp_path / "score.json").exists()
