"""`main()`: the scorer service from environment settings until SIGTERM/SIGINT."""

from svc_kit import serve_forever

from scorer_svc._server import ScorerDeps, create_server
from scorer_svc._settings import ScorerSettings


def main(settings: ScorerSettings | None = None) -> None:
    """Serve the scorer with `settings` (default: from AUTOPERI_SCORER_* variables); the CHGNet
    workers stop when the server does."""
    settings = settings or ScorerSettings()
    deps = ScorerDeps.from_settings(settings)
    servers = []

    def factory(s: ScorerSettings):
        servers.append(create_server(s, deps))
        return servers[-1]

    try:
        serve_forever(factory, settings)
    finally:
        for server in servers:
            server.core.close()


if __name__ == "__main__":
    main()
