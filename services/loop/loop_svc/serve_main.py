"""`main()`: the loop service from environment settings until SIGTERM/SIGINT
(`python -m loop_svc.serve_main`; `loop_svc.main` is the `autoperi loop` command)."""

from svc_kit import serve_forever

from loop_svc._server import LoopDeps, create_server
from loop_svc._settings import LoopSettings


def main(settings: LoopSettings | None = None) -> None:
    """Serve LoopService with `settings` (default: AUTOPERI_LOOP_* variables); loops that
    were running when the last server on the same state directory stopped resume."""
    settings = settings or LoopSettings()
    deps = LoopDeps.from_settings(settings)
    serve_forever(lambda s: create_server(s, deps), settings)


if __name__ == "__main__":
    main()
