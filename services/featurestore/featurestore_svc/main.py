"""`main()`: the featurestore service from environment settings until SIGTERM/SIGINT."""

from svc_kit import serve_forever

from featurestore_svc._server import FeatureStoreDeps, create_server
from featurestore_svc._settings import FeatureStoreSettings


def main(settings: FeatureStoreSettings | None = None) -> None:
    """Serve the featurestore with `settings` (default: AUTOPERI_FEATURESTORE_* variables)."""
    settings = settings or FeatureStoreSettings()
    deps = FeatureStoreDeps.from_settings(settings)
    serve_forever(lambda s: create_server(s, deps), settings)


if __name__ == "__main__":
    main()
