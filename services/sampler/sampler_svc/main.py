"""`main()`: the sampler on Ray Serve from environment settings until SIGTERM/SIGINT."""

from svc_kit import configure_logging

from sampler_svc._launch import serve_until_signal
from sampler_svc._settings import SamplerSettings


def main(settings: SamplerSettings | None = None) -> None:
    """Serve the sampler with `settings` (default: from AUTOPERI_SAMPLER_* variables)."""
    settings = settings or SamplerSettings()
    configure_logging(settings.log_level, settings.log_json)
    serve_until_signal(settings)


if __name__ == "__main__":
    main()
