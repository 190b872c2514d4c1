"""The entry the `autoperi serve ingest` command calls."""

from ingest_svc._settings import IngestSettings
from ingest_svc.main import main


def serve(host: str, port: int, storage_uri: str) -> None:
    """Serve the ingest service on host:port over the stores at `storage_uri` until a signal;
    other settings come from AUTOPERI_INGEST_* variables."""
    main(IngestSettings(host=host, port=port, storage_uri=storage_uri))
