"""Typer options shared by the services' `autoperi serve <service>` commands.

Imported only by the services' `cli` modules (so servers themselves never load typer). Every
option defaults to None, meaning "not given": pass them to `settings_from_options`, and the
environment (AUTOPERI_<SERVICE>_*) or the settings' defaults fill in the rest.
"""

from typing import Annotated

import typer

Host = Annotated[str | None, typer.Option(help="Address to bind (default [::]).")]
Port = Annotated[int | None, typer.Option(help="Port to bind (0: a free one).")]
StorageUri = Annotated[
    str | None, typer.Option(help="Object store directory or URI (file://, s3://).")
]
