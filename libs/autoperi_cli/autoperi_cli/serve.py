"""Mount the services' own commands: `autoperi serve SERVICE` and any client/bench commands.

Each service package may ship `<name>_svc.cli` with:
- `serve`: a typer command function that runs the service in the foreground until a signal;
- `COMMANDS`: {name: command} added to the top-level `autoperi` app (e.g. `autoperi score`);
- `BENCH`: {name: command} added under `autoperi bench` (e.g. `autoperi bench serve`).
The CLI only mounts them, so it stays thin and a service's heavy imports happen inside its
commands.
"""

import importlib
from types import ModuleType

import typer

SERVICES = ("ingest", "featurestore", "scorer", "sampler", "trainer", "loop")

app = typer.Typer(
    help="Run a gRPC service (settings from flags or AUTOPERI_<SERVICE>_* variables).",
    no_args_is_help=True,
)


def service_modules() -> list[tuple[str, ModuleType]]:
    """(name, `<name>_svc.cli`) for every service whose package is on the path."""
    found = []
    for name in SERVICES:
        try:
            found.append((name, importlib.import_module(f"{name}_svc.cli")))
        except ModuleNotFoundError as exc:
            if exc.name not in (f"{name}_svc", f"{name}_svc.cli"):
                raise
    return found


def mount_services(main_app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add every service's serve, client and bench commands to the CLI."""
    for name, module in service_modules():
        if hasattr(module, "serve"):
            app.command(name)(module.serve)
        for command_name, command in getattr(module, "COMMANDS", {}).items():
            main_app.command(command_name)(command)
        for command_name, command in getattr(module, "BENCH", {}).items():
            bench_app.command(command_name)(command)
