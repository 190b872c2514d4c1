"""`autoperi serve scorer`, `autoperi score`, `autoperi screen`, `autoperi bench score`.

Found by the `autoperi` application through the entry point in this service's pyproject.toml."""

from pathlib import Path
from typing import Annotated

import typer
from svc_kit.cli_options import Host, Port, StackContext, StackRole


def serve(
    host: Host = None,
    port: Port = None,
    storage_uri: Annotated[
        str | None, typer.Option(help="Dataset store for novelty (directory, file://, s3://).")
    ] = None,
    workers: Annotated[int | None, typer.Option(help="CHGNet worker processes.")] = None,
    torch_threads: Annotated[int | None, typer.Option(help="Torch threads per worker.")] = None,
) -> None:
    """Serve crystal scoring (CHGNet energy, forces, stress, relaxation, validity, symmetry,
    novelty) on port 50063 unless told otherwise; other settings come from AUTOPERI_SCORER_*
    variables."""
    from svc_kit import settings_from_options

    from scorer_svc._settings import ScorerSettings
    from scorer_svc.main import main

    options = {"workers": workers, "torch_threads": torch_threads}
    main(
        settings_from_options(
            ScorerSettings, host=host, port=port, storage_uri=storage_uri, **options
        )
    )


def score(
    files: Annotated[list[Path], typer.Argument(help="CIF / CSV files or samples.json files.")],
    address: Annotated[
        str | None, typer.Option(help="Scorer host:port (default: score in this process).")
    ] = None,
    relax: Annotated[bool, typer.Option(help="Relax (FIRE + cell filter) before scoring.")] = False,
    max_relax_steps: Annotated[int, typer.Option(min=1, help="Relaxation steps.")] = 500,
    fmax: Annotated[float, typer.Option(min=0.0, help="Relaxation force threshold, eV/A.")] = 0.1,
    novelty: Annotated[
        str | None, typer.Option(help="Novelty vs an ingested dataset: NAME or NAME@REF.")
    ] = None,
    storage_uri: Annotated[
        str, typer.Option(help="Dataset store for --novelty when scoring in this process.")
    ] = "autoperi-data",
    json_out: Annotated[Path | None, typer.Option("--json", help="Write results here.")] = None,
    symmetry: Annotated[
        str, typer.Option(help="Space-group search: spglib, moyopy (~10x faster) or none.")
    ] = "spglib",
) -> None:
    """Score crystals: energy per atom (CHGNet), validity, space group, novelty; a table, and
    JSON with --json."""
    from scorer_svc._cli_score import parse_reference, run_score
    from scorer_svc._model import ScoreOptions

    try:
        options = ScoreOptions(
            relax=relax, max_relax_steps=max_relax_steps, fmax=fmax, include_relaxed_crystal=relax,
            novelty_reference=parse_reference(novelty) if novelty else None, symmetry=symmetry,
        )  # fmt: skip
    except ValueError as exc:  # the options' own checks (an unknown --symmetry)
        raise typer.BadParameter(str(exc)) from None
    run_score(files, address, options, storage_uri, json_out)


def bench_score(
    out: Annotated[Path, typer.Option(help="Output directory.")] = Path("reports/bench"),
    n: Annotated[int, typer.Option(min=1, help="Crystals per split.")] = 100,
    splits: Annotated[str, typer.Option(help="Comma-separated test splits.")] = "perov_5,mp_20",
    batch_size: Annotated[int, typer.Option(min=1, help="Crystals per CHGNet call.")] = 16,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Scorer worker processes (default: CPU count).")
    ] = None,
    samples: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            file_okay=False,
            help="A directory of CIF files (e.g. from `autoperi sample`): one more workload.",
        ),
    ] = None,
) -> None:
    """Batched scorer vs one-by-one CHGNet calls on the same crystals -> score.json / score.md."""
    from rich.console import Console

    from scorer_svc._bench import bench_score as run

    names = [s.strip() for s in splits.split(",")]
    try:
        result = run(out, n, names, batch_size, workers, samples)
    except ValueError as exc:  # an unknown split, a directory without crystals
        raise typer.BadParameter(str(exc)) from None
    Console().print_json(data=result)


def screen(
    files: Annotated[
        list[Path], typer.Argument(help="Candidates: CIF / CSV files or samples.json files.")
    ],
    out: Annotated[Path, typer.Option(help="Directory for the kept crystals (samples.json).")],
    best_of: Annotated[int, typer.Option(min=1, help="Candidates per kept crystal.")] = 2,
    target_formation_energy: Annotated[
        float | None,
        typer.Option(
            help="Keep the formation energy per atom closest to this (eV/atom) "
            "instead of the lowest E_hull."
        ),
    ] = None,
    hull: Annotated[
        Path | None,
        typer.Option(
            help="Hull reference (`autoperi data hull`) when scoring in this process "
            "(default: AUTOPERI_SCORER_HULL_ENTRIES).",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    address: Annotated[
        str | None, typer.Option(help="Scorer host:port (default: score in this process).")
    ] = None,
) -> None:
    """Keep the best of every --best-of consecutive candidates by a CHGNet single point: the
    lowest energy above the hull, or the formation energy closest to a target. Sample n x m
    crystals, screen with --best-of m, and get n (`autoperi eval` reads the output)."""
    from scorer_svc._cli_score import run_screen
    from scorer_svc._screen import ScreenPlan

    if hull is not None and address:
        raise typer.BadParameter("--hull is for scoring in this process; a server uses its own")
    run_screen(files, address, ScreenPlan(best_of, target_formation_energy), hull, out)


COMMANDS = {"score": score, "screen": screen}
BENCH = {"score": bench_score}


def _stack_args(ctx: StackContext) -> list[str]:
    return ["--storage-uri", ctx.storage_uri]


STACK = StackRole(order=2, args=_stack_args)
