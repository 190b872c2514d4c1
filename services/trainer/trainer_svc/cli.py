"""`autoperi serve trainer`: the trainer's commands.

Found by the `autoperi` application through the entry point in this service's pyproject.toml."""

from typing import Annotated

import typer
from svc_kit.cli_options import Host, Port, StackContext, StackRole, StorageUri


def serve(
    host: Host = None,
    port: Port = None,
    storage_uri: StorageUri = None,
    featurestore_address: Annotated[
        str | None, typer.Option(help="Featurestore host:port (default 127.0.0.1:50062).")
    ] = None,
    ray_address: Annotated[
        str | None, typer.Option(help="Ray cluster address (default: start a local Ray).")
    ] = None,
) -> None:
    """Launch, follow and cancel training runs on Ray Train (port 50065 unless told otherwise);
    other settings come from AUTOPERI_TRAINER_* variables."""
    from svc_kit import settings_from_options

    from trainer_svc._settings import TrainerSettings
    from trainer_svc.main import main

    main(
        settings_from_options(
            TrainerSettings,
            host=host,
            port=port,
            storage_uri=storage_uri,
            featurestore_address=featurestore_address,
            ray_address=ray_address,
        )
    )


def _stack_args(ctx: StackContext) -> list[str]:
    return [
        "--storage-uri", ctx.storage_uri, "--ray-address", ctx.ray_address,
        "--featurestore-address", ctx.address("featurestore"),
    ]  # fmt: skip


STACK = StackRole(order=4, args=_stack_args)
