"""`main()`: the trainer service from environment settings until SIGTERM/SIGINT."""

from svc_kit import ServiceServer, serve_forever

from trainer_svc._launcher import ensure_ray
from trainer_svc._server import TrainerDeps, create_server
from trainer_svc._settings import TrainerSettings


def main(settings: TrainerSettings | None = None) -> None:
    """Serve the trainer with `settings` (default: AUTOPERI_TRAINER_* variables), connecting to
    the Ray cluster of `ray_address` or starting a local Ray. On shutdown the active runs are
    cancelled (their state is kept in the object store)."""
    settings = settings or TrainerSettings()
    ensure_ray(settings.ray_address, settings.ray_num_cpus, settings.ray_object_store_memory)
    deps = TrainerDeps.from_settings(settings)
    built: list[ServiceServer] = []

    def factory(s: TrainerSettings) -> ServiceServer:
        built.append(create_server(s, deps))
        return built[-1]

    try:
        serve_forever(factory, settings)
    finally:
        for server in built:
            server.core.close()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
