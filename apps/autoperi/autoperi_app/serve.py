"""Mount the services' own commands: `autoperi serve SERVICE` and any client/bench commands.

Services are found through the entry point group `autoperi.services` (each service's
pyproject.toml names its `cli` module), so no list of services is written here. A `cli` module
may hold:
- `serve`: a typer command function that runs the service in the foreground until a signal;
- `COMMANDS`: {name: command} added to the top-level `autoperi` app (e.g. `autoperi score`);
- `BENCH`: {name: command} added under `autoperi bench` (e.g. `autoperi bench serve`);
- `STACK`: a `svc_kit.cli_options.StackRole`, its part in `autoperi stack`.
The CLI only mounts them, so it stays thin and a service's heavy imports happen inside its
commands.
"""

from importlib.metadata import entry_points
from types import ModuleType

import typer

GROUP = "autoperi.services"

app = typer.Typer(
    help="Run a gRPC service (settings from flags or AUTOPERI_<SERVICE>_* variables).",
    no_args_is_help=True,
)


def service_modules() -> list[tuple[str, ModuleType]]:
    """(name, `cli` module) of every installed service, sorted by name."""
    found = sorted(entry_points(group=GROUP), key=lambda e: e.name)
    return [(entry.name, entry.load()) for entry in found]


def mount_services(main_app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add every service's serve, client and bench commands to the CLI."""
    for name, module in service_modules():
        if hasattr(module, "serve"):
            app.command(name)(module.serve)
        for command_name, command in getattr(module, "COMMANDS", {}).items():
            main_app.command(command_name)(command)
        for command_name, command in getattr(module, "BENCH", {}).items():
            bench_app.command(command_name)(command)
