"""`autoperi screen`: which candidate of each group is kept, on synthetic scores and on CHGNet."""

import json

import numpy as np
import pytest
import typer
from typer.testing import CliRunner
from xtal import Crystal, write_samples

from scorer_svc._model import Scores
from scorer_svc._screen import ScreenPlan
from scorer_svc.cli import screen
from scorer_svc.conftest import HULL_ROWS


def _scores(e_hull: list, formation: list | None = None) -> list[Scores]:
    formation = formation or [None] * len(e_hull)
    return [
        Scores(index=i, structure_valid=e is not None, e_above_hull=e, formation_energy_per_atom=f)
        for i, (e, f) in enumerate(zip(e_hull, formation, strict=True))
    ]


def test_each_group_keeps_its_lowest_e_hull_and_a_group_without_one_is_left_out():
    results = _scores([0.3, 0.1, 0.2, None, float("nan"), None, 0.5])
    failed = Scores.failed(1, "x", "too_large", "too many atoms")
    assert ScreenPlan(3).choose([results[0], failed, results[2]]) == [2]
    assert ScreenPlan(3).choose(results) == [1, 6]  # group 2 has no value; the last has one
    assert ScreenPlan(1).choose(results) == [0, 1, 2, 6]


def test_a_formation_energy_target_keeps_the_closest_instead():
    results = _scores([0.0, 0.4, 0.2], formation=[-2.0, -1.1, -1.6])
    assert ScreenPlan(3).choose(results) == [0]
    assert ScreenPlan(3, target_formation_energy=-1.0).choose(results) == [1]
    assert ScreenPlan(3, target_formation_energy=-1.5).choose(results) == [2]
    with pytest.raises(ValueError, match="best_of"):
        ScreenPlan(0)


def _larh(scale: float) -> Crystal:
    """LaRh in the CsCl structure, lattice constant 3.4 A times `scale`."""
    return Crystal(np.eye(3) * 3.4 * scale, [[0, 0, 0], [0.5, 0.5, 0.5]], [57, 45])


def _run(tmp_path, *args: str):
    app = typer.Typer()
    app.command()(screen)
    return CliRunner().invoke(app, [str(tmp_path / "candidates" / "samples.json"), *args])


def test_the_cli_keeps_the_relaxed_cell_over_a_strained_one_with_chgnet(tmp_path):
    """Two groups (strained, natural), (natural, strained): CHGNet puts the natural cell lower
    above the La-Rh hull, so both groups keep it; a far formation-energy target keeps the
    strained ones; without a hull no candidate has an E_hull and the command refuses."""
    candidates = [_larh(1.3), _larh(1.0), _larh(1.0), _larh(1.3)]
    write_samples(candidates, ["LaRh"] * 4, tmp_path / "candidates", "test")
    hull = tmp_path / "hull.json"
    hull.write_text(json.dumps({"results": HULL_ROWS}))

    result = _run(tmp_path, "--best-of", "2", "--hull", str(hull), "--out", str(tmp_path / "a"))
    assert result.exit_code == 0, result.output
    kept = json.loads((tmp_path / "a" / "samples.json").read_text())["crystals"]
    assert [k["properties"]["candidate"] for k in kept] == [1.0, 2.0]
    assert all(np.isfinite(k["properties"]["e_above_hull_sp"]) for k in kept)
    assert json.loads((tmp_path / "a" / "screen.json").read_text())["kept"] == 2

    result = _run(tmp_path, "--best-of", "2", "--hull", str(hull), "--target-formation-energy",
                  "5", "--out", str(tmp_path / "b"))  # fmt: skip
    assert result.exit_code == 0, result.output
    kept = json.loads((tmp_path / "b" / "samples.json").read_text())["crystals"]
    assert [k["properties"]["candidate"] for k in kept] == [0.0, 3.0]


def test_the_cli_screens_on_a_scorer_server_with_its_hull(tmp_path, scorer_server):
    """The same choice over gRPC: the server's own La-Rh hull (`HULL_ROWS`) judges."""
    write_samples([_larh(1.0), _larh(1.3)], ["LaRh"] * 2, tmp_path / "candidates", "test")
    result = _run(tmp_path, "--address", scorer_server.address, "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    kept = json.loads((tmp_path / "out" / "samples.json").read_text())["crystals"]
    assert [k["properties"]["candidate"] for k in kept] == [0.0]


def test_the_cli_refuses_when_no_candidate_has_an_e_hull(tmp_path, monkeypatch):
    monkeypatch.delenv("AUTOPERI_SCORER_HULL_ENTRIES", raising=False)
    write_samples([_larh(1.0)], ["LaRh"], tmp_path / "candidates", "test")
    result = _run(tmp_path, "--out", str(tmp_path / "out"))
    assert result.exit_code == 2 and "needs a hull reference" in result.output
    assert not (tmp_path / "out").exists()


def test_the_cli_refuses_a_hull_file_for_a_server(tmp_path):
    write_samples([_larh(1.0)], ["LaRh"], tmp_path / "candidates", "test")
    hull = tmp_path / "hull.json"
    hull.write_text(json.dumps({"results": HULL_ROWS}))
    result = _run(
        tmp_path, "--address", "127.0.0.1:1", "--hull", str(hull), "--out", str(tmp_path / "o")
    )
    assert result.exit_code == 2 and "server uses its own" in result.output
