"""Test helpers: a sampler Serve app on free ports of the connected Ray, removed on exit.

with serving_sampler(checkpoint_dir, SamplerSettings(app_name="sampler")) as address:
    crystals = sample(address, "SrTiO3", n=4, steps=10, seed=0)
"""

import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path

from sampler_svc._launch import deploy
from sampler_svc._settings import SamplerSettings


def free_port() -> int:
    """A TCP port that was free a moment ago (Serve's gRPC proxy cannot bind port 0)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serving_sampler(
    checkpoint: str | Path, settings: SamplerSettings | None = None
) -> Iterator[str]:
    """The gRPC address ('127.0.0.1:port') of a sampler app for `checkpoint`, running until exit.

    Ray must be initialised. Serve has one gRPC proxy whose servicers are fixed when Serve
    starts, so a Serve already running is shut down first; on exit the app is deleted and Serve
    shut down.
    """
    from ray import serve

    settings = settings or SamplerSettings()
    serve.shutdown()
    port = free_port()
    deploy(checkpoint, port, free_port(), settings)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        serve.delete(settings.app_name)
        serve.shutdown()
