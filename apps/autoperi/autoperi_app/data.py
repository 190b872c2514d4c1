"""`autoperi data ...`: look at crystal files before using them, and name the dataset commit of
a benchmark split."""

from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from autoperi_app._datasets import DEFAULT_STORE
from autoperi_app._errors import UserError

app = typer.Typer(
    help="Inspect crystal files (CIF, CDVAE/DiffCSP CSV); dataset commits of the splits.",
    no_args_is_help=True,
)
console = Console()


@app.command("inspect")
def inspect(
    path: Annotated[Path, typer.Argument(help="A CIF file or a CDVAE/DiffCSP CSV file.")],
    limit: Annotated[int, typer.Option(help="Rows of the crystal table to show (0: none).")] = 20,
    strict: Annotated[
        bool, typer.Option(help="Exit with status 1 if any record is rejected.")
    ] = False,
) -> None:
    """Print a table of the crystals in PATH and the reason each rejected record was rejected."""
    import autoperi_data

    if not path.exists():
        raise UserError(f"no such file: {path}")
    table = _crystal_table(path)
    accepted, rejected = 0, []
    for record in autoperi_data.read_records(path):
        if record.error is not None:
            rejected.append(record)
            continue
        accepted += 1
        if accepted <= limit:
            _add_row(table, record)
    if limit:
        console.print(table)
    _print_rejections(rejected)
    console.print(f"[bold]{accepted}[/] accepted, [bold]{len(rejected)}[/] rejected in {path}")
    if strict and rejected:
        raise typer.Exit(1)


def _crystal_table(path: Path) -> Table:
    table = Table(title=str(path.name))
    for column in (
        "#",
        "id",
        "formula",
        "atoms",
        "volume (A^3)",
        "a, b, c (A)",
        "alpha, beta, gamma",
    ):
        table.add_column(column)
    return table


def _add_row(table: Table, record) -> None:
    crystal = record.crystal
    lengths, angles = crystal.lattice_parameters()
    table.add_row(
        str(record.index),
        crystal.id or record.key,
        crystal.formula,
        str(crystal.num_atoms),
        f"{crystal.volume:.2f}",
        ", ".join(f"{x:.3f}" for x in lengths),
        ", ".join(f"{x:.1f}" for x in angles),
    )


def _print_rejections(rejected: list) -> None:
    if not rejected:
        return
    table = Table(title="rejected records")
    for column in ("#", "record", "reason"):
        table.add_column(column)
    for record in rejected[:50]:
        table.add_row(str(record.index), record.key, record.error)
    console.print(table)
    reasons = Counter(record.error.split(":")[0] for record in rejected)
    console.print("reasons: " + ", ".join(f"{r} x{n}" for r, n in reasons.most_common()))


@app.command("commit")
def commit(
    split: Annotated[str, typer.Argument(help="A benchmark split, e.g. perov_5:train.")],
    datasets: Annotated[
        Path, typer.Option(help="Store of the dataset commits (made on first use).")
    ] = DEFAULT_STORE,
) -> None:
    """Print the dataset commit of SPLIT (ingesting its file into --datasets on first use): the
    id a model card names. The same file gives the same id in any store."""
    from autoperi_app._datasets import DatasetStore

    found = DatasetStore(datasets).split_commit(split)
    console.print(f"{found}  ({found.num_crystals} crystals, source sha256 {found.source_sha256})")
