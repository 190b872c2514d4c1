"""`autoperi stack`: every service on this machine until Ctrl-C (the local launcher).

Public names of the launcher (used by the demo and the tests): `StackConfig`, `running_stack`,
`stack_roles`, `health_ready`."""

import signal
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from autoperi_app._stack import StackConfig, health_ready, running_stack, stack_roles

__all__ = ["StackConfig", "health_ready", "running_stack", "stack", "stack_roles"]
console = Console()


def stack(
    storage_uri: Annotated[
        str, typer.Option(help="Object store directory or URI shared by the services.")
    ] = "autoperi-data",
    checkpoint: Annotated[Path, typer.Option(help="Checkpoint the sampler serves.")] = Path(
        "checkpoints/perov_5_csp"
    ),
    base_port: Annotated[
        int, typer.Option(help="Ports base_port.. in the services' stack order.")
    ] = 50061,
    log_dir: Annotated[Path, typer.Option(help="Service logs.")] = Path("build/stack-logs"),
    ray_address: Annotated[
        str | None, typer.Option(help="Ray cluster to use (default: start a local Ray).")
    ] = None,
) -> None:
    """Start Ray and every service with a stack role (ingest, featurestore, scorer, sampler,
    trainer, loop), print their addresses, and run until SIGINT/SIGTERM (then drain and stop
    them all)."""
    config = StackConfig(storage_uri, checkpoint, base_port, log_dir, ray_address)
    stop = threading.Event()
    with running_stack(config, progress=console.print) as running:
        for signum in (signal.SIGTERM, signal.SIGINT):  # after ray.init, which sets its own
            signal.signal(signum, lambda *_: stop.set())
        table = Table(title="AutoPeri stack")
        table.add_column("service")
        table.add_column("address")
        table.add_column("log")
        for service, address in running.addresses.items():
            table.add_row(service, address, str(log_dir / f"{service}.log"))
        console.print(table)
        while not stop.wait(1.0):
            pass
        console.print("stopping")
