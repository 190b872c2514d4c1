"""`autoperi bench ...`: benchmarks that write JSON + markdown into reports/bench/."""

from pathlib import Path
from typing import Annotated

import typer
from autoperi_data import data_dir
from rich.console import Console

app = typer.Typer(help="Benchmarks; results go to reports/bench/.", no_args_is_help=True)
console = Console()


@app.command("graph")
def graph(
    cutoff: Annotated[float, typer.Option(help="Radius-graph cutoff in Angstrom.")] = 6.0,
    limit: Annotated[int, typer.Option(help="Crystals of the MP-20 test split (0: all).")] = 0,
    out: Annotated[Path, typer.Option(help="Output directory.")] = Path("reports/bench"),
) -> None:
    """Periodic radius graphs over the MP-20 test split: ours vs pymatgen, in the same run."""
    from featurize.bench_graph import run_graph_benchmark

    result = run_graph_benchmark(data_dir(), cutoff=cutoff, limit=limit or None, out_dir=out)
    console.print_json(data=result)


@app.command("fuzz")
def fuzz(
    reader_inputs: Annotated[int, typer.Option(min=1, help="Inputs read by the reader.")] = 100_000,
    ingest_inputs: Annotated[int, typer.Option(min=1, help="Inputs sent to the ingest.")] = 5_000,
    seed: Annotated[int, typer.Option(help="Seed of every input.")] = 0,
    workers: Annotated[int, typer.Option(min=1, help="Reader worker processes.")] = 2,
    files_per_call: Annotated[int, typer.Option(min=1, help="Files per Ingest call.")] = 50,
    hang_seconds: Annotated[float, typer.Option(help="An input slower than this hangs.")] = 5.0,
    out: Annotated[Path, typer.Option(help="Output directory.")] = Path("reports/bench"),
) -> None:
    """Mutated CIF files through the reader (crashes, hangs) and a real ingest server (statuses,
    all-or-nothing commits) -> fuzz.json / fuzz.md; exit 1 when anything was found."""
    from autoperi_app._fuzz import FuzzPlan, IngestPlan, ReaderPlan, run_fuzz

    plan = FuzzPlan(
        ReaderPlan(reader_inputs, seed, workers, hang_seconds),
        IngestPlan(ingest_inputs, seed, files_per_call),
    )
    result = run_fuzz(plan, out)
    console.print_json(data={k: v for k, v in result.items() if k not in ("reader", "ingest")})
    console.print(f"fuzz: {'passed' if result['passed'] else 'FAILED'}; see {out / 'fuzz.md'}")
    if not result["passed"]:
        raise typer.Exit(1)


@app.command("soak")
def soak(
    checkpoint: Annotated[Path, typer.Option(help="Checkpoint directory.")] = Path(
        "checkpoints/perov_5_csp"
    ),
    requests: Annotated[int, typer.Option(min=1, help="Requests in all.")] = 10_000,
    clients: Annotated[int, typer.Option(min=1, help="Concurrent closed-loop clients.")] = 64,
    bad_fraction: Annotated[float, typer.Option(help="Share of bad requests.")] = 0.1,
    steps: Annotated[int, typer.Option(help="Steps per sample (0: the default).")] = 2,
    sampler: Annotated[str, typer.Option(help="euler, heun, or '' (the default).")] = "euler",
    seed: Annotated[int, typer.Option(help="Seed of the request list.")] = 0,
    out: Annotated[Path, typer.Option(help="Output directory.")] = Path("reports/bench"),
) -> None:
    """Mixed unary / stream sampler requests, some bad, against a real sampler on Ray Serve:
    none lost or doubled, every bad one refused with its reason -> soak.json / soak.md; exit 1
    otherwise."""
    from autoperi_app._soak import soak as run
    from autoperi_app._soak_requests import SoakPlan

    plan = SoakPlan(requests, clients, bad_fraction, seed, steps=steps, sampler=sampler)
    result = run(checkpoint, out, plan)
    keys = ("passed", "lost_requests", "duplicated_requests", "wrongly_accepted", "latency_ms")
    console.print_json(data={k: result[k] for k in keys})
    console.print(f"soak: {'passed' if result['passed'] else 'FAILED'}; see {out / 'soak.md'}")
    if not result["passed"]:
        raise typer.Exit(1)


@app.command("conditioning")
def conditioning(
    checkpoint: Annotated[Path, typer.Option(help="De novo checkpoint directory.")],
    out: Annotated[Path, typer.Option(help="Output directory.")] = Path(
        "reports/eval/conditioning"
    ),
    n: Annotated[int, typer.Option(min=1, help="Samples per condition.")] = 500,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    steps: Annotated[int | None, typer.Option(help="Integration steps (flow models).")] = None,
    elements_only: Annotated[
        bool,
        typer.Option(
            "--elements-only",
            help="Only the element conditions (chemical systems, required Li), e.g. for a "
            "flow model: it is not symmetry-conditioned, and slower.",
        ),
    ] = False,
) -> None:
    """Per condition (chemical systems, required Li, space groups 225/62/194/14, 8-12 atoms)
    the share of `n` de novo samples that honour it, beside `n` unconditional ones, with
    structural and SMACT compositional validity -> OUT/<checkpoint name>.json / .md."""
    from autoperi_eval import composition_valid
    from autoperi_model import (
        ELEMENT_CONDITIONS,
        ION_EXCHANGE_CONDITIONS,
        ConditioningPlan,
        bench_conditioning,
        write_conditioning,
    )

    checks = {"comp_valid": lambda c: composition_valid(c.atomic_numbers.tolist())}
    conditions = ELEMENT_CONDITIONS if elements_only else ION_EXCHANGE_CONDITIONS
    result = bench_conditioning(checkpoint, conditions, ConditioningPlan(n, seed, steps, checks))
    path = write_conditioning(result, out, Path(checkpoint).name)
    console.print(f"{result['cpu_seconds']} CPU s; report -> {path}")
