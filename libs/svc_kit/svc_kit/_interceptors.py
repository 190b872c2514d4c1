"""The server interceptor: one structured log line per RPC and domain errors mapped to statuses.

Servicer methods should be `async def` (or async generators for streaming responses); a plain
function also works but runs on the event loop, blocking it.
"""

import asyncio
import inspect
import logging
import time
import uuid
from collections.abc import Awaitable, Callable

import grpc

from svc_kit._errors import ErrorMap, resolve_error_map, status_for

log = logging.getLogger("svc_kit.rpc")
MAX_DETAILS = 1000  # characters of an error message sent to the client
QUIET_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")  # logged at DEBUG (probes)


class ServiceInterceptor(grpc.aio.ServerInterceptor):
    """Wraps every handler: logs method, status and duration; maps exceptions to statuses."""

    def __init__(self, error_map: ErrorMap | None = None) -> None:
        self.error_map = resolve_error_map(error_map)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        return self._wrap(handler, handler_call_details.method)

    def _wrap(self, handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
        codec = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(handler.unary_unary, method), **codec
            )
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                self._unary(handler.stream_unary, method), **codec
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                self._stream(handler.unary_stream, method), **codec
            )
        return grpc.stream_stream_rpc_method_handler(
            self._stream(handler.stream_stream, method), **codec
        )

    def _unary(self, behavior, method: str):
        async def unary(request, context: grpc.aio.ServicerContext):
            start, left = time.perf_counter(), False
            try:
                result = behavior(request, context)
                return (await result) if inspect.isawaitable(result) else result
            except grpc.aio.AbortError:
                raise
            except asyncio.CancelledError:  # the caller left
                left = True
                raise
            except Exception as exc:
                await self._abort(exc, context, method)
            finally:
                _log_rpc(method, context, start, left)

        return unary

    def _stream(self, behavior, method: str):
        async def stream(request, context: grpc.aio.ServicerContext):
            start, left = time.perf_counter(), False
            try:
                result = behavior(request, context)
                if inspect.isasyncgen(result):
                    async for item in result:
                        yield item
                elif inspect.isawaitable(result):
                    await result  # writes with context.write()
                else:
                    for item in result:
                        yield item
            except grpc.aio.AbortError:
                raise
            except asyncio.CancelledError:
                left = True
                raise
            except Exception as exc:
                await self._abort(exc, context, method)
            finally:
                _log_rpc(method, context, start, left)

        return stream

    async def _abort(self, exc: Exception, context: grpc.aio.ServicerContext, method: str):
        code = status_for(exc, self.error_map)
        if code is None:
            error_id = uuid.uuid4().hex[:12]
            log.error(
                "unhandled error in %s (error id %s)",
                method,
                error_id,
                exc_info=exc,
                extra={"rpc_method": method, "error_id": error_id},
            )
            await context.abort(grpc.StatusCode.INTERNAL, f"internal error (id {error_id})")
        details = str(exc) or type(exc).__name__
        await context.abort(code, details[:MAX_DETAILS])


def _log_rpc(
    method: str, context: grpc.aio.ServicerContext, start: float, left: bool = False
) -> None:
    """One line per RPC; `left`: the handler was cancelled because the caller went away."""
    code = context.code() or (
        grpc.StatusCode.CANCELLED if left or context.cancelled() else grpc.StatusCode.OK
    )
    if isinstance(code, int):  # the aio context reports a raw status number
        code = next((c for c in grpc.StatusCode if c.value[0] == code), grpc.StatusCode.UNKNOWN)
    duration_ms = (time.perf_counter() - start) * 1e3
    level = logging.DEBUG if method.startswith(QUIET_PREFIXES) else logging.INFO
    log.log(
        level,
        "%s %s %.1fms",
        method,
        code.name,
        duration_ms,
        extra={
            "rpc_method": method,
            "grpc_code": code.name,
            "duration_ms": round(duration_ms, 3),
            "peer": context.peer(),
        },
    )
