"""One side of the graph benchmark, run in its own process so its memory is measured alone.

``python -m featurize._bench_worker SIDE INPUT.npz CUTOFF BATCH_SIZE EDGES.npz`` where SIDE is
``pymatgen`` (``Structure.get_neighbor_list`` per structure), ``ours`` (``periodic.neighbor_list``,
the same outputs, per batch) or ``ours_graph`` (``periodic.radius_graph``, with edge vectors)
reads the crystals, builds every radius graph once untimed on a few crystals (warm-up), then
times the whole split, writes the edges to EDGES.npz and one JSON line of measurements to stdout.

Memory: the peak resident set size (RSS) of the process is reset just before the timed loop
(Linux ``/proc/self/clear_refs``), so ``loop_peak_rss_mb`` is the peak during the loop and
``loop_peak_increase_mb`` its excess over the RSS the process had before it (inputs, libraries).
"""

import json
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

_WARMUP_CRYSTALS = 16
_PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20


def _rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * _PAGE_MB


def _peak_mb() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        return False
    return True


def _ours(
    data: dict[str, np.ndarray], cutoff: float, batch_size: int, vectors: bool
) -> Callable[[int, int], tuple]:
    import torch
    from periodic import neighbor_list, radius_graph

    build = radius_graph if vectors else neighbor_list

    torch.set_num_threads(1)
    lattice, frac = torch.from_numpy(data["lattice"]), torch.from_numpy(data["frac_coords"])
    num_atoms = torch.from_numpy(data["num_atoms"])
    first = np.concatenate([[0], np.cumsum(data["num_atoms"])])

    def run(start: int, stop: int) -> tuple:
        parts = []
        for b in range(start, stop, batch_size):
            e = min(b + batch_size, stop)
            graph = build(lattice[b:e], frac[first[b] : first[e]], cutoff, num_atoms=num_atoms[b:e])
            parts.append((int(first[b]), graph.edge_index, graph.cell_offsets, graph.edge_lengths))
        return tuple(parts)

    return run


def _pymatgen(data: dict[str, np.ndarray], cutoff: float) -> Callable[[int, int], tuple]:
    from pymatgen.core import Lattice, Structure

    first = np.concatenate([[0], np.cumsum(data["num_atoms"])])
    structures = [
        Structure(
            Lattice(data["lattice"][b]),
            data["atomic_numbers"][first[b] : first[b + 1]].tolist(),
            data["frac_coords"][first[b] : first[b + 1]],
        )
        for b in range(len(data["num_atoms"]))
    ]

    def run(start: int, stop: int) -> tuple:
        return tuple(structures[b].get_neighbor_list(cutoff) for b in range(start, stop))

    return run


def _ours_edges(parts: tuple) -> dict[str, np.ndarray]:
    """Edge arrays in one global atom numbering (shifted after the timed loop, as for pymatgen)."""
    return {
        "source": np.concatenate([p[1][0].numpy() + p[0] for p in parts]),
        "target": np.concatenate([p[1][1].numpy() + p[0] for p in parts]),
        "offsets": np.concatenate([p[2].numpy() for p in parts]),
        "distances": np.concatenate([p[3].numpy() for p in parts]),
    }


def _pymatgen_edges(parts: tuple, num_atoms: np.ndarray) -> dict[str, np.ndarray]:
    first = np.concatenate([[0], np.cumsum(num_atoms)])
    return {
        "source": np.concatenate([p[0] + first[b] for b, p in enumerate(parts)]),
        "target": np.concatenate([p[1] + first[b] for b, p in enumerate(parts)]),
        "offsets": np.rint(np.concatenate([p[2] for p in parts])).astype(np.int64),
        "distances": np.concatenate([p[3] for p in parts]),
    }


def measure(side: str, inputs: Path, cutoff: float, batch_size: int, edges_out: Path) -> dict:
    """Time one side over all crystals of ``inputs``; write its edges; return the measurements."""
    data = dict(np.load(inputs))
    if side == "pymatgen":
        run = _pymatgen(data, cutoff)
    else:
        run = _ours(data, cutoff, batch_size, vectors=side == "ours_graph")
    run(0, min(_WARMUP_CRYSTALS, len(data["num_atoms"])))
    rss_before = _rss_mb()
    exact_peak = _reset_peak()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    wall, cpu = time.perf_counter(), time.process_time()
    parts = run(0, len(data["num_atoms"]))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    after = resource.getrusage(resource.RUSAGE_SELF)
    peak = _peak_mb()
    edges = _pymatgen_edges(parts, data["num_atoms"]) if side == "pymatgen" else _ours_edges(parts)
    np.savez(edges_out, **edges)
    return {
        "seconds": wall,
        "cpu_seconds": cpu,
        "user_seconds": after.ru_utime - usage.ru_utime,
        "system_seconds": after.ru_stime - usage.ru_stime,
        "page_faults": after.ru_minflt - usage.ru_minflt,
        "edges": int(edges["source"].shape[0]),
        "rss_before_mb": round(rss_before, 1),
        "loop_peak_rss_mb": round(peak, 1),
        "loop_peak_increase_mb": round(max(peak - rss_before, 0.0), 1),
        "peak_is_loop_only": exact_peak,
    }


if __name__ == "__main__":
    side, inputs, cutoff, batch_size, edges_out = sys.argv[1:6]
    result = measure(side, Path(inputs), float(cutoff), int(batch_size), Path(edges_out))
    sys.stdout.write(json.dumps(result) + "\n")
