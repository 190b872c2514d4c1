"""`main()`: the ingest service from environment settings until SIGTERM/SIGINT."""

from svc_kit import serve_forever

from ingest_svc._server import IngestDeps, create_server
from ingest_svc._settings import IngestSettings


def main(settings: IngestSettings | None = None) -> None:
    """Serve the ingest service with `settings` (default: from AUTOPERI_INGEST_* variables)."""
    settings = settings or IngestSettings()
    deps = IngestDeps.from_settings(settings)
    serve_forever(lambda s: create_server(s, deps), settings)


if __name__ == "__main__":
    main()
