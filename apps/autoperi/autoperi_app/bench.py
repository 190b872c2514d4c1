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
