"""`autoperi serve ingest`: the ingest service's commands.

Found by the `autoperi` application through the entry point in this service's pyproject.toml."""

from svc_kit.cli_options import Host, Port, StackContext, StackRole, StorageUri


def serve(host: Host = None, port: Port = None, storage_uri: StorageUri = None) -> None:
    """Serve dataset ingestion (CIF, CSV, proto crystals -> versioned datasets) on port 50061
    unless told otherwise; other settings come from AUTOPERI_INGEST_* variables."""
    from svc_kit import settings_from_options

    from ingest_svc._settings import IngestSettings
    from ingest_svc.main import main

    main(settings_from_options(IngestSettings, host=host, port=port, storage_uri=storage_uri))


def _stack_args(ctx: StackContext) -> list[str]:
    return ["--storage-uri", ctx.storage_uri]


STACK = StackRole(order=0, args=_stack_args)
