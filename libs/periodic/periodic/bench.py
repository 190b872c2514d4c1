"""Timing of the periodic graphs on training-size batches: ``python -m periodic.bench``.

Random crystals (``atoms`` per cell at 15 A^3 per atom, cell angles in [80, 100] degrees) in
batches of ``num_crystals``; one thread; the median over ``repeats`` calls is reported for the
radius graph without gradients, with a backward pass through the lengths, and the kNN graph.
The comparison with pymatgen lives in ``featurize.bench_graph``.
"""

import json
import statistics
import sys
import time
from collections.abc import Callable

import torch

from periodic._knn import knn_graph
from periodic._lattice import params_to_lattice
from periodic._radius import radius_graph

_VOLUME_PER_ATOM = 15.0  # A^3, typical of inorganic crystals (MP-20 averages about 17)


def random_batch(
    num_crystals: int, atoms: int, dtype: torch.dtype, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Lattices (B, 3, 3), fractional coordinates (B * atoms, 3) and num_atoms (B,)."""
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.full((num_crystals, 3), (_VOLUME_PER_ATOM * atoms) ** (1.0 / 3.0))
    angles = 80.0 + 20.0 * torch.rand(num_crystals, 3, generator=gen)
    lattice = params_to_lattice(lengths, angles).to(dtype)
    frac = torch.rand(num_crystals * atoms, 3, generator=gen).to(dtype)
    return lattice, frac, torch.full((num_crystals,), atoms)


def _median_ms(call: Callable[[], object], repeats: int) -> float:
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def time_training_batches(
    num_crystals: int = 64,
    atoms: int = 20,
    cutoffs: tuple[float, ...] = (5.0, 6.0),
    k: int = 24,
    repeats: int = 20,
) -> list[dict[str, float | str | int]]:
    """Median milliseconds per call for each cutoff and dtype (see the module docstring)."""
    torch.set_num_threads(1)
    rows = []
    for dtype in (torch.float32, torch.float64):
        batch = random_batch(num_crystals, atoms, dtype)
        rows += [_time_radius(batch, cutoff, repeats) for cutoff in cutoffs]
        rows.append(_time_knn(batch, k, repeats))
    return rows


def _time_radius(
    batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor], cutoff: float, repeats: int
) -> dict[str, float | str | int]:
    lattice, frac, num_atoms = batch

    def forward() -> object:
        return radius_graph(lattice, frac, cutoff, num_atoms=num_atoms)

    def backward() -> None:
        lat, x = lattice.clone().requires_grad_(), frac.clone().requires_grad_()
        radius_graph(lat, x, cutoff, num_atoms=num_atoms).edge_lengths.sum().backward()

    return {
        "graph": f"radius {cutoff} A",
        "dtype": str(frac.dtype).removeprefix("torch."),
        "edges": forward().edge_index.shape[1],
        "ms": _median_ms(forward, repeats),
        "ms_with_backward": _median_ms(backward, repeats),
    }


def _time_knn(
    batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor], k: int, repeats: int
) -> dict[str, float | str | int]:
    lattice, frac, num_atoms = batch
    return {
        "graph": f"knn k={k}",
        "dtype": str(frac.dtype).removeprefix("torch."),
        "edges": frac.shape[0] * k,
        "ms": _median_ms(lambda: knn_graph(lattice, frac, k, num_atoms=num_atoms), repeats),
    }


def main() -> None:
    """Print one JSON line per measurement."""
    for row in time_training_batches():
        sys.stdout.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
