"""`autoperi bench score`: the batched scorer against one-by-one CHGNet calls.

Workloads: the first `n` crystals of each test split and, when given, of a directory of
generated crystals (the scorer's work in the active-learning loop: mostly low-symmetry cells,
where the space-group search is cheap). Each is scored in each of `VARIANTS` (energies with
spglib's, moyopy's or no space groups; energies, forces and stress with spglib's) by (1) one
`predict_structure` call per crystal in one worker process (the baseline), (2) the scorer
(`ScorerCore.score`: batched CHGNet plus validity, content hash and space group) on one worker
process and (3) on N (default: the CPU count, as on a dedicated machine), (4) batched
`predict_structure` alone; one torch thread per process. Each path is timed in `ROUNDS`
interleaved rounds after a warm-up on other crystals of the workload (so no cache hits), in
wall seconds and in CPU seconds summed over the worker processes (the fair measure on a shared
machine), and reported as medians; the energies of (2), (3), (4) are compared with (1). A
per-stage CPU profile of a batched call (`_worker.stage_times`) is added. Results go to
`<out>/score.json` and `<out>/score.md` with the machine's load."""

import itertools
import json
import os
import platform
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from autoperi_data import DATA_DIR_ENV, CrystalArrays, Record, read_records, split_path
from xtal import Crystal

from scorer_svc._core import CoreLimits, ScorerCore
from scorer_svc._model import ScoreOptions
from scorer_svc._pool import PoolLimits, PotentialPool

_BENCH_SPLITS = ("perov_5", "mp_20")  # their test splits
#: name -> (CHGNet task, symmetry backend of the scorer); "e" and "efs" use the default backend,
#: "e_no_symmetry" does what the baseline does (energies; validity and hash besides)
VARIANTS = {
    "e": ("e", "spglib"),
    "e_moyopy": ("e", "moyopy"),
    "e_no_symmetry": ("e", "none"),
    "efs": ("efs", "spglib"),
}


def _machine(threads: int) -> dict[str, Any]:
    import chgnet
    import torch

    return {
        "cpu_count": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "torch_threads_per_worker": threads,
        "torch": torch.__version__,
        "chgnet": chgnet.__version__,
        "platform": platform.platform(),
    }


def _first_crystals(records: Iterable[Record], n: int) -> list[Crystal]:
    """The crystals of the first `n` readable `records` (reading stops there)."""
    return list(itertools.islice((r.crystal for r in records if r.crystal is not None), n))


def load_cif_dir(path: Path, n: int) -> list[Crystal]:
    """The first `n` crystals xtal reads from the `*.cif` files of `path` (name order), e.g. the
    output of `autoperi sample`; ValueError when it holds none."""
    files = sorted(Path(path).glob("*.cif"))
    crystals = _first_crystals(itertools.chain.from_iterable(map(read_records, files)), n)
    if not crystals:
        raise ValueError(f"no readable crystals in {path}/*.cif")
    return crystals


def load_split(name: str, n: int) -> list[Crystal]:
    """The first `n` crystals of a test split under $AUTOPERI_DATA_DIR (xtal readers)."""
    if name not in _BENCH_SPLITS:
        raise ValueError(f"unknown split {name!r}; use one of {sorted(_BENCH_SPLITS)}")
    root = Path(os.environ.get(DATA_DIR_ENV, "../shared/datasets"))
    return _first_crystals(read_records(split_path(name, "test", root)), n)


def _timed(pool: PotentialPool, fn) -> tuple[Any, float, float]:
    """(value, wall seconds, CPU seconds of all of `pool`'s worker processes) of `fn()`."""
    cpu0 = pool.cpu_seconds()
    start = time.perf_counter()
    value = fn()
    wall = time.perf_counter() - start
    return value, wall, pool.cpu_seconds() - cpu0


def _scored(core: ScorerCore, crystals: list[Crystal], options: ScoreOptions) -> list:
    """`core.score` results of `crystals`, in order."""
    _, batches = core.score(crystals, options)
    return sorted((r for b in batches for r in b), key=lambda r: r.index)


def _items(crystals: list[Crystal]) -> list:
    return [CrystalArrays.of(c) for c in crystals]


ROUNDS = 3  # every path timed once a round, the rounds interleaved; medians reported


def _bench_task(
    cores: dict[str, ScorerCore],
    crystals: list[Crystal],
    warm: list[Crystal],
    variant: str,
    size: int,
) -> dict[str, Any]:
    """Every way for one of `VARIANTS` on the same crystals, in `ROUNDS` interleaved rounds:
    one-by-one calls and batched CHGNet alone in the 1-worker pool, the scorer on 1 and on N
    workers. Throughputs are medians over the rounds; speed-ups are medians of the ratios to
    the one-by-one calls of the same round (the machine's load drifts between rounds)."""
    task, symmetry = VARIANTS[variant]
    efs = task == "efs"
    options = ScoreOptions(include_forces=efs, include_stress=efs, symmetry=symmetry)
    one = cores["1w"].pool
    one.call("predict_each", (_items(warm[:4]), task))  # warm-ups on other crystals: no
    one.call("predict_batched", (_items(warm[:8]), size, task))  # cache hits in timed runs
    for core in cores.values():
        _scored(core, warm[: size * core.pool.limits.workers], options)
    items, n = _items(crystals), len(crystals)
    paths = {"one_by_one": (one, lambda: one.call("predict_each", (items, task)))}
    for name, core in cores.items():
        paths[f"scorer_{name}"] = (core.pool, lambda c=core: _scored(c, crystals, options))
    paths["batched_chgnet_only"] = (one, lambda: one.call("predict_batched", (items, size, task)))
    times = {key: [] for key in paths}  # (wall s, CPU s) per round
    outputs = {}
    for _ in range(ROUNDS):
        for key, (pool, run) in paths.items():
            outputs[key], wall, cpu = _timed(pool, run)
            times[key].append((wall, cpu))
    row = _throughputs(times, n)
    single = np.array(outputs["one_by_one"][0])
    reference = one.call("reference_efs", (items,))[0] if efs else None
    for name in cores:
        results = outputs[f"scorer_{name}"]
        energies = np.array([r.energy_per_atom for r in results], dtype=float)
        row[f"max_abs_energy_diff_scorer_{name}"] = float(np.nanmax(np.abs(energies - single)))
        row[f"errors_scorer_{name}"] = sum(r.error is not None for r in results)
        if reference is not None:
            row |= _force_stress_diffs(name, results, reference)
    raw = np.array(outputs["batched_chgnet_only"][0])
    row["max_abs_energy_diff_batched_chgnet"] = float(np.max(np.abs(raw - single)))
    stages, _ = one.call("stage_times", (items, task, size))
    row |= {f"cpu_ms_per_crystal:{k}": v for k, v in stages.items()}
    return dict(sorted(row.items()))


def _throughputs(times: dict[str, list[tuple[float, float]]], n: int) -> dict[str, float]:
    """Per path: crystals per wall and per CPU second and cores used (medians over rounds);
    for the others, speed-ups over "one_by_one" (medians of the per-round ratios)."""
    base = np.array(times["one_by_one"])  # (rounds, 2)
    row: dict[str, float] = {}
    for key, values in times.items():
        wall, cpu = np.array(values).T
        row[f"{key}_per_s_wall"] = round(float(np.median(n / wall)), 2)
        row[f"{key}_per_cpu_s"] = round(float(np.median(n / cpu)), 2)
        row[f"cores_used_{key}"] = round(float(np.median(cpu / wall)), 2)  # CPU s per wall s
        if key != "one_by_one":
            row[f"speedup_{key}_vs_one_by_one_wall"] = round(float(np.median(base[:, 0] / wall)), 2)
            row[f"speedup_{key}_vs_one_by_one_cpu"] = round(float(np.median(base[:, 1] / cpu)), 2)
    return row


def _force_stress_diffs(name: str, results: list, reference: list) -> dict[str, float]:
    """Max |dF| (eV/A) and |dS| (GPa) of the scorer's `results` (errors skipped) against
    CHGNet's own one-by-one `predict_structure(task="efs")` (`reference`: (e, f, s (3, 3)))."""
    df, ds = 0.0, 0.0
    for result, (_, forces, s) in zip(results, reference, strict=True):
        if result.error is None:
            voigt = np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])
            df = max(df, float(np.max(np.abs(result.forces - forces))))
            ds = max(ds, float(np.max(np.abs(result.stress - voigt))))
    return {f"max_abs_force_diff_scorer_{name}": df, f"max_abs_stress_diff_scorer_{name}": ds}


def _bench_split(
    cores: dict[str, ScorerCore], crystals: list[Crystal], warm: list[Crystal], size: int
) -> dict[str, Any]:
    items, warm = _items(crystals), warm or crystals
    row: dict[str, Any] = {
        "crystals": len(crystals),
        "mean_atoms": round(float(np.mean([c.num_atoms for c in crystals])), 2),
    }
    for variant in VARIANTS:
        for key, value in _bench_task(cores, crystals, warm, variant, size).items():
            row[f"{variant}:{key}"] = value
    one = cores["1w"].pool
    _, wall, cpu = _timed(one, lambda: one.call("predict_each", (items, "efsm")))
    n = len(crystals)
    row["naive:one_by_one_default_task_efsm_per_s_wall"] = round(n / wall, 2)
    row["naive:one_by_one_default_task_efsm_per_cpu_s"] = round(n / cpu, 2)
    last = f"e:scorer_{list(cores)[-1]}_per_s_wall"
    row["naive:speedup_scorer_e_Nw_vs_naive_wall"] = round(row[last] * wall / n, 2)
    return row


def _cores(workers: int, n: int, size: int) -> dict[str, ScorerCore]:
    """{"1w": scorer on one worker, f"{workers}w": scorer on `workers`} (started, warm)."""
    core_limits = CoreLimits(batch_size=size, max_batch_size=max(n, size * workers))
    cores = {}
    for count in dict.fromkeys((1, workers)):
        limits = PoolLimits(workers=count, num_threads=1, symmetry_cache_size=0)  # cold
        cores[f"{count}w"] = ScorerCore(PotentialPool(limits), None, core_limits)
    return cores


def bench_score(
    out: Path,
    n: int,
    splits: list[str],
    batch_size: int = 16,
    workers: int | None = None,
    samples: Path | None = None,
) -> dict[str, Any]:
    """Run the benchmark on `splits` (e.g. ["perov_5", "mp_20"]) and, when given, on the CIF
    files in `samples` (a row named after the directory), with the scorer on 1 and on `workers`
    (default: the CPU count) worker processes, and write the reports."""
    workers = workers or os.cpu_count() or 1
    load_before = round(os.getloadavg()[0], 2)
    wanted = n + batch_size * workers  # the crystals after the first n warm the workers up
    workloads = {name: load_split(name, wanted) for name in splits}
    if samples is not None:
        workloads[Path(samples).name] = load_cif_dir(samples, wanted)
    cores = _cores(workers, n, batch_size)
    try:
        start = time.perf_counter()
        for core in cores.values():
            core.pool.warm()
        t_load = time.perf_counter() - start
        rows = {
            name: _bench_split(cores, crystals[:n], crystals[n:], batch_size)
            for name, crystals in workloads.items()
        }
    finally:
        for core in cores.values():
            core.close()
    result = {
        "what": "structures per second: batched scorer (1 and N worker processes) vs one"
        " predict_structure call each in one process",
        "task": "e (energy only, the default ScoreOptions: spglib space groups), e_moyopy"
        " (energy only, symmetry_backend moyopy), e_no_symmetry (energy only, symmetry_backend"
        " none: the baseline's work) and efs (include_forces and include_stress),"
        " CHGNet 0.3.0, CPU, one torch thread per process; each path timed in"
        f" {ROUNDS} interleaved rounds after a warm-up, on the same crystals; wall seconds and"
        " CPU seconds summed over the worker processes used (the machine is shared); medians"
        " over the rounds, speed-ups as medians of the per-round ratios",
        "batch_size": batch_size,
        "workers": workers,
        "workers_start_s": round(t_load, 2),
        "splits": rows,
        "target_speedup": 3.0,
        "naive_baseline": "one predict_structure(structure) call each with CHGNet's default"
        " task 'efsm' (energy, forces, stress, magmoms), which code that loops over CHGNet"
        " computes; the e:/efs: rows compare like with like",
        "note": NOTE,
        "machine": _machine(1) | {"load_average_1m_before": load_before},
    }
    _write(out, result)
    return result


NOTE = (
    "the scorer does more per crystal than the baseline: validity, content hash and the space"
    " group (spglib's symmetry search on the cell pymatgen's SpacegroupAnalyzer builds, or"
    " moyopy's in e_moyopy; see cpu_ms_per_crystal:space_group_*; the cache by content hash is"
    " off here, every crystal is new) on top of CHGNet. The scorer runs CHGNet with its conv"
    " layers factorised (each first linear map applied to the atom and bond tables before the"
    " edge gathers; same weights, energies within 1e-6 eV/atom of CHGNet's, see max_abs_*) on"
    " graphs built with numpy (equal to CHGNet's), in forwards of at most 4,000 edges"
    " (scorer_svc._graph.FORWARD_EDGES); for e under torch.no_grad (the baseline records an"
    " autograd graph it never uses), for efs differentiating once for forces and stress together"
    " (CHGNet: two passes with create_graph). cpu_ms_per_crystal rows profile one batched call"
    " of the 1-worker process (forward_plain_predict_graph: CHGNet's own path). Per CPU second"
    " the speed-up is bounded by (one-by-one CPU per crystal) / (conversion + forward + extras);"
    " per wall second it is multiplied by the cores the machine gives the N workers (cores_used"
    " = CPU s / wall s). All workers, the baseline's included, run with the pool's glibc malloc"
    " settings (scorer_svc._pool.WORKER_MALLOC)"
)


def _summary(result: dict[str, Any]) -> str:
    """One line per split: the scorer on N workers against one-by-one calls, and the load."""
    nw, lines = f"{result['workers']}w", []
    for split, row in result["splits"].items():
        parts = [
            f"{task}: {row[f'{task}:speedup_scorer_{nw}_vs_one_by_one_wall']}x per wall s,"
            f" {row[f'{task}:speedup_scorer_{nw}_vs_one_by_one_cpu']}x per CPU s"
            f" ({row[f'{task}:cores_used_scorer_{nw}']} cores used; 1 worker:"
            f" {row[f'{task}:speedup_scorer_1w_vs_one_by_one_cpu']}x per CPU s)"
            for task in VARIANTS
        ]
        lines.append(f"- {split}: " + "; ".join(parts))
    machine = result["machine"]
    return (
        f"Scorer on {nw} vs one-by-one CHGNet calls (target {result['target_speedup']}x):\n"
        + "\n".join(lines)
        + f"\n\nLoad average (1 min) {machine['load_average_1m_before']} before,"
        f" {machine['load_average_1m']} after, on {machine['cpu_count']} CPUs."
    )


def _write(out: Path, result: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "score.json").write_text(json.dumps(result, indent=2) + "\n")
    keys = list(next(iter(result["splits"].values())))
    head = "| quantity | " + " | ".join(result["splits"]) + " |"
    rows = [head, "|---" * (len(result["splits"]) + 1) + "|"]
    for key in keys:
        rows.append(
            f"| {key} | " + " | ".join(str(v[key]) for v in result["splits"].values()) + " |"
        )
    machine = "\n".join(f"| {k} | {v} |" for k, v in result["machine"].items())
    body = (
        f"# Scorer throughput: {result['what']}\n\n{result['task']}; batch size"
        f" {result['batch_size']}; {result['workers']} worker processes (Nw) and one (1w);"
        f" target speed-up"
        f" >= {result['target_speedup']}x; workers start (CHGNet loads)"
        f" {result['workers_start_s']} s."
        f"\n\n{_summary(result)}\n\nNaive baseline: {result['naive_baseline']}."
        f"\n\nNote: {result['note']}.\n\n"
        + "\n".join(rows)
        + f"\n\n| machine | |\n|---|---|\n{machine}\n"
    )
    (out / "score.md").write_text(body)
