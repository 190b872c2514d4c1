"""`autoperi serve trainer`: the trainer's commands (mounted by autoperi_cli)."""

from typing import Annotated

import typer


def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (default [::]).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 50065; 0: a free one).")] = None,
    storage_uri: Annotated[
        str | None, typer.Option(help="Object store directory or URI (file://, s3://).")
    ] = None,
    featurestore_address: Annotated[
        str | None, typer.Option(help="Featurestore host:port (default 127.0.0.1:50062).")
    ] = None,
    ray_address: Annotated[
        str | None, typer.Option(help="Ray cluster address (default: start a local Ray).")
    ] = None,
) -> None:
    """Launch, follow and cancel training runs on Ray Train; other settings come from
    AUTOPERI_TRAINER_* variables."""
    from trainer_svc._settings import TrainerSettings
    from trainer_svc.main import main

    given = {
        "host": host,
        "port": port,
        "storage_uri": storage_uri,
        "featurestore_address": featurestore_address,
        "ray_address": ray_address,
    }
    main(TrainerSettings(**{k: v for k, v in given.items() if v is not None}))
