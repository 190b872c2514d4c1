"""`autoperi demo`: the first thing a new user runs; shows what the platform does so far."""

import time
from collections import Counter
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.progress import track
from rich.table import Table

from autoperi_cli._settings import split_path

console = Console()


def demo(
    split: Annotated[
        str, typer.Option(help="Dataset split to load, e.g. perov_5:test.")
    ] = "perov_5:test",
    checkpoint: Annotated[
        Path, typer.Option(help="Model checkpoint for the structure-prediction step.")
    ] = Path("checkpoints/perov_5_csp"),
) -> None:
    """Load and validate a dataset split, then predict structures with the committed checkpoint."""
    import xtal

    path = split_path(split)
    console.rule(f"[bold]AutoPeri demo[/]: {split}")
    start = time.perf_counter()
    crystals, rejected = [], Counter()
    for record in track(xtal.read_records(path), description="reading + validating"):
        if record.error is not None:
            rejected[record.error.split(":")[0]] += 1
            continue
        crystals.append(record.crystal.canonical())
    seconds = time.perf_counter() - start
    hashes = {crystal.content_hash() for crystal in crystals}
    _print_summary(split, crystals, rejected, len(hashes), seconds)
    if checkpoint.is_dir():
        _predict_structures(checkpoint, ["SrTiO3", "BaZrO3", "KNbO3"])


def _predict_structures(checkpoint: Path, compositions: list[str]) -> None:
    """Crystal structure prediction with the committed checkpoint: one structure per composition."""
    from autoperi_model import Generator

    console.rule(f"[bold]crystal structure prediction[/] with {checkpoint}")
    generator = Generator.from_checkpoint(checkpoint)
    start = time.perf_counter()
    crystals = generator.generate_csp(compositions, 1, steps=10, sampler="euler", seed=0)
    seconds = time.perf_counter() - start
    table = Table(title=f"predicted structures (Euler, 10 steps, {seconds:.1f} s)")
    for column in ("composition", "formula", "atoms", "volume (A^3)", "a, b, c (A)"):
        table.add_column(column)
    for text, crystal in zip(compositions, crystals, strict=True):
        lengths, _ = crystal.lattice_parameters()
        table.add_row(
            text,
            crystal.formula,
            str(crystal.num_atoms),
            f"{crystal.volume:.2f}",
            ", ".join(f"{x:.3f}" for x in lengths),
        )
    console.print(table)


def _print_summary(split, crystals, rejected, n_unique, seconds) -> None:
    atoms = np.array([c.num_atoms for c in crystals])
    volume_per_atom = np.array([c.volume / c.num_atoms for c in crystals])
    elements = Counter(s for c in crystals for s in set(c.symbols))
    table = Table(title=f"{split}: validated and canonicalised (Niggli cell, wrapped coordinates)")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    rows = [
        ("crystals accepted", f"{len(crystals):,}"),
        ("records rejected", f"{sum(rejected.values()):,}"),
        ("distinct content hashes", f"{n_unique:,}"),
        (
            "atoms per cell (min / mean / max)",
            f"{atoms.min()} / {atoms.mean():.2f} / {atoms.max()}",
        ),
        (
            "volume per atom, A^3 (mean +- std)",
            f"{volume_per_atom.mean():.2f} +- {volume_per_atom.std():.2f}",
        ),
        ("distinct elements", str(len(elements))),
        ("most common elements", ", ".join(f"{e} ({n})" for e, n in elements.most_common(6))),
        ("throughput", f"{len(crystals) / seconds:,.0f} crystals/s"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    for reason, count in rejected.most_common():
        console.print(f"rejected: {reason} x{count}")
