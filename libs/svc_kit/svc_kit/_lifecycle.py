"""Running a service until SIGTERM/SIGINT, then shutting it down gracefully."""

import asyncio
import inspect
import logging
import signal
from collections.abc import Awaitable, Callable
from typing import TypeVar

from svc_kit._logging import configure_logging
from svc_kit._server import ServiceServer
from svc_kit._settings import ServiceSettings

log = logging.getLogger("svc_kit.server")
S = TypeVar("S", bound=ServiceSettings)
ServerFactory = Callable[[S], ServiceServer | Awaitable[ServiceServer]]


async def serve(
    create_server: ServerFactory, settings: S, stop: asyncio.Event | None = None
) -> None:
    """Build and start the server, wait for SIGTERM/SIGINT (or `stop`), then stop gracefully:
    NOT_SERVING, no new RPCs, in-flight RPCs finish within settings.grace_period_s."""
    built = create_server(settings)
    service = (await built) if inspect.isawaitable(built) else built
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    try:
        await service.start()
        await stop.wait()
        log.info("shutdown requested")
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
        await service.stop()


def serve_forever(create_server: ServerFactory, settings: S) -> None:
    """A service's `main()`: configure logging from `settings`, then `serve` until a signal."""
    configure_logging(settings.log_level, settings.log_json)
    asyncio.run(serve(create_server, settings))
