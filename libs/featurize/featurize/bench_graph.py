"""Benchmark: our batched periodic radius graph against pymatgen's ``get_neighbor_list``.

Three sides get the same crystals (the MP-20 test split as read by ``autoperi_data.read_records``):
pymatgen's ``Structure.get_neighbor_list`` per structure (its API), and, once per batch of
crystals, our ``periodic.neighbor_list`` (the same outputs) and ``periodic.radius_graph`` (with
edge vectors). Each builds every graph at the same cutoff in a fresh single-threaded worker
process (torch and BLAS set to one thread) and is timed over the whole split after a small
warm-up. Each side runs ``repeats`` times, alternating with the others, and its fastest run is
reported (the machine may be shared; all runs are listed). Our edge lists are then compared with
pymatgen's edge for edge (``periodic.testing.compare_edge_lists``). Results go to ``graph.json``
and ``graph.md``.

Run: ``python -m featurize.bench_graph DATA_DIR [--cutoff 6] [--limit N] [--out reports/bench]``.
"""

import argparse
import itertools
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from autoperi_data import read_records, split_path
from periodic.testing import compare_edge_lists

DEFAULT_OUT = Path("reports/bench")
_THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def run_graph_benchmark(
    data_dir: str | Path,
    cutoff: float = 6.0,
    limit: int | None = None,
    out_dir: str | Path | None = DEFAULT_OUT,
    batch_size: int = 512,
    repeats: int = 5,
) -> dict[str, Any]:
    """Time radius graphs (``cutoff`` in A) over the MP-20 test split (first ``limit`` crystals).

    Returns the report dict (see module docstring) and writes it to ``out_dir`` unless None.
    Raises FileNotFoundError when the split is missing.
    """
    split = split_path("mp_20", "test", Path(data_dir), must_exist=False)
    if not split.is_file():
        raise FileNotFoundError(f"MP-20 test split not found at {split}")
    records = list(itertools.islice(read_records(split), limit))
    crystals = [r.crystal for r in records if r.crystal is not None]
    with tempfile.TemporaryDirectory(prefix="bench-graph-") as tmp:
        inputs = Path(tmp) / "inputs.npz"
        np.savez(
            inputs,
            lattice=np.stack([c.lattice for c in crystals]),
            frac_coords=np.concatenate([c.frac_coords for c in crystals]),
            atomic_numbers=np.concatenate([c.atomic_numbers for c in crystals]),
            num_atoms=np.array([c.num_atoms for c in crystals]),
        )
        runs: dict[str, list[dict]] = {"pymatgen": [], "ours": [], "ours_graph": []}
        for _ in range(repeats):
            for side, measured in runs.items():
                edges = Path(tmp) / f"{side}.npz"
                measured.append(_run_worker(side, inputs, cutoff, batch_size, edges))
        comparison = _compare(Path(tmp), cutoff)
    sides = {side: _fastest(measured) for side, measured in runs.items()}
    report = _report(sides, comparison, crystals, len(records), cutoff, batch_size, split)
    if out_dir is not None:
        write_report(report, Path(out_dir))
    return report


def _run_worker(side: str, inputs: Path, cutoff: float, batch_size: int, edges: Path) -> dict:
    env = {**os.environ, **dict.fromkeys(_THREAD_ENV, "1")}
    command = [sys.executable, "-m", "featurize._bench_worker", side, str(inputs)]
    command += [str(cutoff), str(batch_size), str(edges)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the {side} benchmark worker failed: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _fastest(runs: list[dict]) -> dict:
    best = min(runs, key=lambda run: run["seconds"])
    return {
        **best,
        "all_seconds": [round(run["seconds"], 4) for run in runs],
        "all_cpu_seconds": [round(run["cpu_seconds"], 4) for run in runs],
    }


def _compare(tmp: Path, cutoff: float) -> dict[str, Any]:
    """Edge-for-edge comparison of each of our sides with pymatgen."""
    lists = {}
    for side in ("pymatgen", "ours", "ours_graph"):
        with np.load(tmp / f"{side}.npz") as data:
            lists[side] = tuple(data[k] for k in ("source", "target", "offsets", "distances"))
    results = {
        side: compare_edge_lists(lists[side], lists["pymatgen"], cutoff)
        for side in ("ours", "ours_graph")
    }
    summary = {**results["ours"].__dict__}
    summary["identical"] = all(result.identical for result in results.values())
    return summary


def _report(
    sides: dict[str, dict],
    comparison: dict[str, Any],
    crystals: list,
    num_records: int,
    cutoff: float,
    batch_size: int,
    split: Path,
) -> dict[str, Any]:
    import pymatgen.core
    import torch

    ours, graph, ref = sides["ours"], sides["ours_graph"], sides["pymatgen"]
    return {
        "benchmark": "periodic radius graph",
        "dataset": f"mp_20 test ({split.name})",
        "crystals": len(crystals),
        "records_rejected": num_records - len(crystals),
        "atoms": int(sum(c.num_atoms for c in crystals)),
        "cutoff_angstrom": cutoff,
        "threads": 1,
        "ours_batch_size": batch_size,
        "repeats": len(sides["ours"]["all_seconds"]),
        "pymatgen": ref,
        "ours": ours,
        "ours_graph": graph,
        "ratio": ref["seconds"] / ours["seconds"],
        "cpu_ratio": min(ref["all_cpu_seconds"]) / min(ours["all_cpu_seconds"]),
        "ratio_radius_graph": ref["seconds"] / graph["seconds"],
        "cpu_ratio_radius_graph": min(ref["all_cpu_seconds"]) / min(graph["all_cpu_seconds"]),
        "edges_equal": ours["edges"] == ref["edges"] == graph["edges"],
        "edge_comparison": comparison,
        "outputs": (
            "pymatgen: Structure.get_neighbor_list per structure (indices, images, distances); "
            "ours: periodic.neighbor_list per batch (the same: edge index, int64 image offsets, "
            "float64 lengths); ours_graph: periodic.radius_graph per batch (also float64 edge "
            "vectors); every side keeps those outputs for the whole split, and both of our edge "
            "lists are compared with pymatgen's"
        ),
        "load_average": os.getloadavg(),
        "memory": (
            "peak RSS of each worker process during the timed loop (VmHWM reset just before it), "
            "and its increase over the RSS before the loop (inputs and imported libraries)"
        ),
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "pymatgen": pymatgen.core.__version__,
        },
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
    }


def write_report(report: dict[str, Any], out_dir: Path) -> None:
    """Write ``graph.json`` and the ``graph.md`` summary table into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "graph.json").write_text(json.dumps(report, indent=2) + "\n")
    (out_dir / "graph.md").write_text(_markdown(report))


def _markdown(report: dict[str, Any]) -> str:
    rows = [
        "| side | wall s (fastest) | all runs, wall s | CPU s user + sys | page faults | edges "
        "| loop peak RSS MB | increase MB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for side in ("pymatgen", "ours", "ours_graph"):
        r = report[side]
        rows.append(
            f"| {side} | {r['seconds']:.3f} | {', '.join(f'{x:.3f}' for x in r['all_seconds'])} "
            f"| {r['user_seconds']:.3f} + {r['system_seconds']:.3f} | {r['page_faults']:,} "
            f"| {r['edges']:,} | {r['loop_peak_rss_mb']:.0f} | {r['loop_peak_increase_mb']:.0f} |"
        )
    comparison = report["edge_comparison"]
    load = ", ".join(f"{x:.1f}" for x in report["load_average"])
    return "\n".join(
        [
            "# Periodic radius graph benchmark",
            "",
            f"{report['dataset']}: {report['crystals']:,} crystals, {report['atoms']:,} atoms, "
            f"cutoff {report['cutoff_angstrom']} A, one thread per side, ours batched "
            f"{report['ours_batch_size']} crystals per call; fastest of {report['repeats']} "
            f"alternating runs per side, each in a fresh process ({report['machine']['cpus']} "
            f"CPUs, load average {load} at the end).",
            "",
            *rows,
            "",
            f"Speed-up (pymatgen s / ours s): **{report['ratio']:.2f}x** wall (fastest runs), "
            f"{report['cpu_ratio']:.2f}x CPU (smallest CPU times); with edge vectors "
            f"(radius_graph): {report['ratio_radius_graph']:.2f}x wall, "
            f"{report['cpu_ratio_radius_graph']:.2f}x CPU.",
            f"Edge lists identical: {comparison['identical']} ({comparison['matched']:,} matched, "
            f"{comparison['boundary_ours']} / {comparison['boundary_reference']} edges within "
            "1e-6 A of the cutoff left out of the comparison).",
            f"Outputs: {report['outputs']}.",
            f"Memory: {report['memory']}.",
            "",
        ]
    )


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path, help="datasets directory (holds mp_20/assembled)")
    parser.add_argument("--cutoff", type=float, default=6.0)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    report = run_graph_benchmark(args.data_dir, args.cutoff, args.limit, args.out)
    sys.stdout.write(_markdown(report))


if __name__ == "__main__":
    main()
