"""Typer options shared by the services' `autoperi serve <service>` commands, and `StackRole`,
how a service takes part in the local stack.

Imported only by the services' `cli` modules (so servers themselves never load typer). Every
option defaults to None, meaning "not given": pass them to `settings_from_options`, and the
environment (AUTOPERI_<SERVICE>_*) or the settings' defaults fill in the rest.

A service's `cli` module is found by the application through the entry point group
`autoperi.services` (declared in the service's pyproject.toml). Besides `serve`, it may define
`COMMANDS` and `BENCH` ({name: command}) and `STACK`, a `StackRole`.
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

Host = Annotated[str | None, typer.Option(help="Address to bind (default [::]).")]
Port = Annotated[int | None, typer.Option(help="Port to bind (0: a free one).")]
StorageUri = Annotated[
    str | None, typer.Option(help="Object store directory or URI (file://, s3://).")
]


@dataclass(frozen=True)
class StackContext:
    """What the stack launcher knows when it starts a service: the shared storage location,
    the Ray address, the checkpoint to serve, the base port and every service's port."""

    storage_uri: str
    ray_address: str
    checkpoint: Path
    base_port: int
    ports: dict[str, int]

    def address(self, service: str) -> str:
        """host:port of a service of the stack."""
        return f"127.0.0.1:{self.ports[service]}"


@dataclass(frozen=True)
class StackRole:
    """How a service runs in `autoperi stack`: its place in the start order (lower first; the
    port is base_port + its index in that order), the extra `autoperi serve <name>` arguments
    (after --port), and an optional readiness probe (address -> ready; default: gRPC health)."""

    order: int
    args: Callable[[StackContext], list[str]] = lambda _: []
    ready: Callable[[str], bool] | None = None
