"""The entry the `autoperi serve featurestore` command calls."""

from featurestore_svc._settings import FeatureStoreSettings
from featurestore_svc.main import main


def serve(host: str, port: int, storage_uri: str) -> None:
    """Serve the featurestore on host:port over the stores at `storage_uri` until a signal;
    other settings come from AUTOPERI_FEATURESTORE_* variables."""
    main(FeatureStoreSettings(host=host, port=port, storage_uri=storage_uri))
