"""The graph benchmark on a few MP-20 crystals (the full split runs in `autoperi bench graph`)."""

import json
from pathlib import Path

import pytest

from featurize.bench_graph import run_graph_benchmark


def test_benchmark_writes_a_consistent_report(data_dir: Path, tmp_path: Path) -> None:
    report = run_graph_benchmark(data_dir, limit=40, out_dir=tmp_path, repeats=1)
    assert report["crystals"] == 40 and report["edges_equal"]
    assert report["edge_comparison"]["identical"]
    assert report["ours"]["edges"] == report["ours_graph"]["edges"] == report["pymatgen"]["edges"]
    assert report["ours"]["edges"] > 0
    assert report["ratio"] == pytest.approx(
        report["pymatgen"]["seconds"] / report["ours"]["seconds"]
    )
    assert json.loads((tmp_path / "graph.json").read_text())["crystals"] == 40
    assert "Speed-up" in (tmp_path / "graph.md").read_text()


def test_missing_split_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="MP-20 test split"):
        run_graph_benchmark(tmp_path, out_dir=None)
