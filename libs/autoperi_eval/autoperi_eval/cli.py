"""`autoperi eval` and `autoperi perturb`: a typer sub-app the `autoperi` CLI mounts with
`main_app.add_typer(autoperi_eval.cli.app)`."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ._config import EvalSettings
from ._evaluate import evaluate
from ._io import EvalInputError

app = typer.Typer(help="Evaluate generated crystals with the CDVAE / DiffCSP protocol.")
console = Console(stderr=True)


class _Bars:
    """A rich progress bar per stage, fed by evaluate's progress callback."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, int] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage not in self.tasks:
            self.tasks[stage] = self.progress.add_task(stage, total=total)
        self.progress.update(self.tasks[stage], completed=done, total=total)


def _summary(report_dict: dict) -> Table:
    table = Table(
        title=f"{report_dict['name']} ({report_dict['task']}, {report_dict['reference']})"
    )
    table.add_column("metric")
    table.add_column("value", justify="right")
    for section, values in report_dict["metrics"].items():
        for key, value in values.items():
            if isinstance(value, dict):
                value = value.get("match_rate")
            shown = (
                "-" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)
            )
            table.add_row(f"{section}.{key}", shown)
    table.add_row("wall time (s)", f"{report_dict['wall_time_s']:.1f}")
    return table


@app.command("eval")
def eval_command(
    samples: Annotated[
        str, typer.Argument(help="CIF directory, .extxyz or JSON sample file, or dataset:split")
    ],
    reference: Annotated[str, typer.Option("--reference", help="dataset:split, e.g. perov_5:test")],
    task: Annotated[str, typer.Option("--task", help="csp or dng")] = "dng",
    name: Annotated[str | None, typer.Option("--name", help="report name")] = None,
    k: Annotated[int, typer.Option("--k", help="CSP candidates per ground truth")] = 20,
    energy: Annotated[bool, typer.Option("--energy/--no-energy", help="CHGNet metrics")] = True,
    relax_samples: Annotated[
        int, typer.Option("--relax-samples", help="samples relaxed for the relaxed E_hull")
    ] = 100,
    relax_steps: Annotated[int, typer.Option("--relax-steps", help="optimiser step cap")] = 100,
    hull: Annotated[
        Path | None,
        typer.Option(
            "--hull",
            help="hull reference file (autoperi data hull) instead of scoring train+val here",
        ),
    ] = None,
    novelty: Annotated[
        bool, typer.Option("--novelty/--no-novelty", help="uniqueness, novelty, S.U.N.")
    ] = True,
    workers: Annotated[
        int | None, typer.Option("--workers", help="processes (default: all cores)")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="seed of the property subset")] = 0,
    out: Annotated[Path, typer.Option("--out", help="report directory")] = Path("reports/eval"),
    residual_of: Annotated[
        Path | None,
        typer.Option(
            "--residual-of",
            help="CSP: the JSON of another report on the same split (e.g. the lookup "
            "baseline's); also report the match rate on the references it missed",
        ),
    ] = None,
    formation_target: Annotated[
        float | None,
        typer.Option(
            "--formation-target",
            help="DNG: the formation energy (eV/atom) asked for; report the share of samples "
            "within 0.1 eV/atom of it after relaxation",
        ),
    ] = None,
) -> None:
    """Evaluate SAMPLES against a reference split; write <out>/<name>.{json,csv,md} and PNGs."""
    logging.basicConfig(level=logging.WARNING)
    settings = EvalSettings(
        k=k,
        energy=energy,
        relax_samples=relax_samples,
        relax_steps=relax_steps,
        hull_file=hull,
        novelty=novelty,
        n_workers=workers,
        seed=seed,
        residual_of=residual_of,
        formation_target=formation_target,
    )
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    try:
        with Progress(*columns, console=console, transient=False) as progress:
            report = evaluate(
                samples,
                reference,
                task,
                name,
                settings=settings,
                out_dir=out,
                progress=_Bars(progress),
            )
    except EvalInputError as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(code=2) from None
    console.print(_summary(report.to_dict()))
    console.print(f"report: {out / (report.name + '.json')}")


@app.command("perturb")
def perturb_command(
    reference: Annotated[str, typer.Argument(help="dataset:split[start:stop] to copy")],
    output: Annotated[Path, typer.Argument(help="JSON sample file to write")],
    n: Annotated[
        int | None, typer.Option("--n", help="number of samples (with replacement if more)")
    ] = None,
    sigma_pos: Annotated[float, typer.Option("--sigma-pos", help="position noise (A)")] = 0.05,
    sigma_lattice: Annotated[
        float, typer.Option("--sigma-lattice", help="relative lattice noise")
    ] = 0.01,
    seed: Annotated[int, typer.Option("--seed")] = 0,
) -> None:
    """Write noisy copies of a split as a sample file (calibration and timing runs).

    Each sample carries `properties.gt_index` = its source row, so it also serves as CSP input.
    """
    import numpy as np

    from ._cache import Cache, default_cache_dir
    from ._io import data_dir_from_env, load_reference, parse_reference, write_samples_json
    from ._perturb import perturb

    try:
        spec = parse_reference(reference)
        records = load_reference(spec, data_dir_from_env(), Cache(default_cache_dir()))
    except EvalInputError as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(code=2) from None
    rng = np.random.default_rng(seed)
    count = n or len(records)
    picks = rng.choice(len(records), count, replace=count > len(records))
    chosen = [records[i] for i in picks]
    noisy = perturb([r.structure for r in chosen], sigma_pos, sigma_lattice, seed=seed + 1)
    write_samples_json(
        noisy,
        output,
        ids=[f"{r.id}~{j}" for j, r in enumerate(chosen)],
        properties=[{"gt_index": float(r.index)} for r in chosen],
    )
    console.print(json.dumps({"written": str(output), "n": count}))
