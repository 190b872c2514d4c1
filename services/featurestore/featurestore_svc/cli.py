"""`autoperi serve featurestore`: the featurestore's commands (mounted by autoperi_cli)."""

from svc_kit.cli_options import Host, Port, StorageUri


def serve(host: Host = None, port: Port = None, storage_uri: StorageUri = None) -> None:
    """Serve features of dataset commits (tensor shards, statistics, fingerprints) on port 50062
    unless told otherwise; other settings come from AUTOPERI_FEATURESTORE_* variables."""
    from svc_kit import settings_from_options

    from featurestore_svc._settings import FeatureStoreSettings
    from featurestore_svc.main import main

    main(settings_from_options(FeatureStoreSettings, host=host, port=port, storage_uri=storage_uri))
