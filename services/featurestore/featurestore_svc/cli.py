"""`autoperi serve featurestore`: the featurestore's commands.

Found by the `autoperi` application through the entry point in this service's pyproject.toml."""

from svc_kit.cli_options import Host, Port, StackContext, StackRole, StorageUri


def serve(host: Host = None, port: Port = None, storage_uri: StorageUri = None) -> None:
    """Serve features of dataset commits (tensor shards, statistics, fingerprints) on port 50062
    unless told otherwise; other settings come from AUTOPERI_FEATURESTORE_* variables."""
    from svc_kit import settings_from_options

    from featurestore_svc._settings import FeatureStoreSettings
    from featurestore_svc.main import main

    main(settings_from_options(FeatureStoreSettings, host=host, port=port, storage_uri=storage_uri))


def _stack_args(ctx: StackContext) -> list[str]:
    return ["--storage-uri", ctx.storage_uri]


STACK = StackRole(order=1, args=_stack_args)
