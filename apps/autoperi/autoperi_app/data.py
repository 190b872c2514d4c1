"""`autoperi data ...`: look at crystal files before using them, name the dataset commit of a
benchmark split, and write the CHGNet hull reference of splits."""

from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from autoperi_app._datasets import DEFAULT_STORE
from autoperi_app._errors import UserError
from autoperi_app._text import cell, markup_safe

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
    """Print a table of the crystals in PATH, the reason each rejected record was rejected and
    the CIF blocks skipped for holding no structure (a journal's publication and powder-profile
    blocks). Everything taken from the file is printed with control characters escaped."""
    import autoperi_data

    if not path.exists():
        raise UserError(f"no such file: {path}")
    table = _crystal_table(path)
    accepted, rejected, skipped = 0, [], []
    for record in autoperi_data.read_records(path, on_skipped=skipped.append):
        if record.error is not None:
            rejected.append(record)
            continue
        accepted += 1
        if accepted <= limit:
            _add_row(table, record)
    if limit:
        console.print(table)
    _print_records("rejected records", rejected, with_reasons=True)
    _print_records("skipped blocks (no crystal structure)", skipped, with_reasons=False)
    console.print(
        f"[bold]{accepted}[/] accepted, [bold]{len(rejected)}[/] rejected,"
        f" [bold]{len(skipped)}[/] skipped in {markup_safe(str(path))}"
    )
    if strict and rejected:
        raise typer.Exit(1)


def _crystal_table(path: Path) -> Table:
    table = Table(title=cell(path.name))
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
        cell(crystal.id or record.key),
        cell(crystal.formula),
        str(crystal.num_atoms),
        f"{crystal.volume:.2f}",
        ", ".join(f"{x:.3f}" for x in lengths),
        ", ".join(f"{x:.1f}" for x in angles),
    )


def _print_records(title: str, records: list, with_reasons: bool) -> None:
    """The first 50 of `records` (rejected or skipped) with their messages; with_reasons: and
    the count of each code."""
    if not records:
        return
    table = Table(title=title)
    for column in ("#", "record", "reason"):
        table.add_column(column)
    for record in records[:50]:
        table.add_row(str(record.index), cell(record.key), cell(record.error))
    console.print(table)
    if with_reasons:
        reasons = Counter(record.code for record in records)
        listed = ", ".join(f"{r} x{n}" for r, n in reasons.most_common())
        console.print("reasons: " + markup_safe(listed))


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


@app.command("hull")
def hull(
    splits: Annotated[
        list[str], typer.Argument(help="Benchmark splits, e.g. mp_20:train mp_20:val.")
    ],
    out: Annotated[Path, typer.Option(help="Hull reference file to write (JSON; .gz: gzipped).")],
    resume_from: Annotated[
        Path | None,
        typer.Option(help="A partial (or complete) hull reference whose relaxations to reuse."),
    ] = None,
    partial: Annotated[
        bool, typer.Option("--partial", help="Write what is computed so far; compute nothing.")
    ] = False,
    datasets: Annotated[
        Path, typer.Option(help="Store of the dataset commits (made on first use).")
    ] = DEFAULT_STORE,
) -> None:
    """Write the hull reference of SPLITS: CHGNet energies of every crystal of their dataset
    commits (single point, and after the evaluation's bounded relaxation), built by the
    featurestore as each commit's reference_energies artifact. Energies are cached in the
    evaluation cache, so an interrupted build resumes on the same machine; elsewhere, `--partial`
    writes what is done and `--resume-from` that file skips it. `autoperi eval --hull` and the
    scorer (AUTOPERI_SCORER_HULL_ENTRIES) read the complete file. Elements no crystal of SPLITS
    is made of alone get their standard crystal (ASE's reference state) scored the same way, for
    formation energies."""
    from autoperi_eval import default_cache_dir, write_json_document

    from autoperi_app import _hull
    from autoperi_app._datasets import DatasetStore

    store, cache_dir = DatasetStore(datasets), default_cache_dir()
    commits = [store.split_commit(split) for split in splits]
    if resume_from is not None:
        seeded = _hull.seed_from(resume_from, store, commits, cache_dir)
        console.print(f"reusing {seeded} relaxations of {resume_from}")
    document = (_hull.partial if partial else _hull.build)(store, commits, cache_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json_document(document, out)
    rows = document["results"]
    scored = sum("error" not in row for row in rows)
    console.print(
        f"{out}: {scored} of {document['expected_crystals']} crystals scored"
        f"{'' if document['complete'] else ' (partial)'}, from {', '.join(document['sources'])}"
    )
    if "elemental_references" in document:
        found = ", ".join(r["element"] for r in document["elemental_references"]) or "none"
        lacking = ", ".join(document["elements_without_reference"]) or "none"
        console.print(f"elemental references: {found}; no reference state for: {lacking}")
