"""Run a service built with svc_kit in a background event loop (for tests and scripts).

`with serving(lambda: create_server(settings, deps)) as server:` starts the server on its own
thread and event loop, so plain (blocking) gRPC clients can call it; on exit it is stopped.
"""

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator

from svc_kit import ServiceServer


@contextlib.contextmanager
def serving(factory: Callable[[], ServiceServer], grace: float = 1.0) -> Iterator[ServiceServer]:
    """The started server built by `factory` (called inside the server's event loop)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="grpc-server", daemon=True)
    thread.start()

    async def start() -> ServiceServer:
        server = factory()
        await server.start()
        return server

    server = asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=60)
    try:
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(grace), loop).result(timeout=60)
        core = getattr(server, "core", None)
        if core is not None:
            core.close()
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
