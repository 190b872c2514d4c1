"""`autoperi train` and `autoperi bench train`: training on the featurised shards of dataset
commits (the benchmark splits ingested into a local, reproducible store; see `_datasets`)."""

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from autoperi_app._datasets import DEFAULT_STORE

console = Console()
Datasets = Annotated[
    Path, typer.Option(help="Store of the dataset commits (made on first use; reproducible ids).")
]


def train(
    config: Annotated[Path, typer.Option(help="YAML config (see configs/).", exists=True)],
    out: Annotated[Path, typer.Option(help="Checkpoint directory to write.")],
    resume: Annotated[
        bool, typer.Option(help="Continue from the training state in --out.")
    ] = False,
    datasets: Datasets = DEFAULT_STORE,
) -> None:
    """Train on the config's dataset splits (files under AUTOPERI_DATA_DIR), read as the tensor
    shards of their dataset commits; the checkpoint's data version names the commits."""
    from autoperi_model import Config
    from autoperi_model import train as run

    from autoperi_app._datasets import DatasetStore

    parsed = Config.from_yaml(config)
    data = DatasetStore(datasets).training_data(parsed)
    console.print(f"data: {data.version} ({len(data.train)} train, {len(data.val)} val crystals)")
    run(parsed, data, out=out, resume=resume)
    console.print(f"checkpoint written to {out}")


def bench_train(
    config: Annotated[Path, typer.Option(help="YAML config.", exists=True)],
    out: Annotated[Path, typer.Option(help="Output directory.")] = Path("reports/bench"),
    steps: Annotated[int, typer.Option(min=1, help="Timed steps.")] = 20,
    datasets: Datasets = DEFAULT_STORE,
) -> None:
    """Training throughput (crystals per second per core) -> train.json / train.md."""
    from autoperi_model import Config, bench_train

    from autoperi_app._datasets import DatasetStore

    data = DatasetStore(datasets).training_data(Config.from_yaml(config))
    console.print_json(data=bench_train(config, data, out, steps))
