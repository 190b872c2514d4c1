"""The thin gRPC servicer of the loop service: requests converted (`_request`, `_convert`) and
handed to the LoopCore, blocking calls in worker threads."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import grpc
from autoperi.loop.v1 import loop_pb2 as pb
from autoperi.loop.v1 import loop_pb2_grpc

from loop_svc import _convert as convert
from loop_svc._journal import TERMINAL
from loop_svc._loops import LoopCore, View
from loop_svc._request import request_to_spec
from loop_svc._spec import LoopSpec

FOLLOW_POLL_S = 1.0


class LoopServicer(loop_pb2_grpc.LoopServiceServicer):
    """LoopService over a LoopCore; `resolve` checks a new plan against the other services."""

    def __init__(self, core: LoopCore, resolve: Callable[[LoopSpec], LoopSpec]) -> None:
        self.core, self.resolve = core, resolve

    async def StartLoop(self, request, context: grpc.aio.ServicerContext):
        view = await asyncio.to_thread(self._start, request)
        return pb.StartLoopResponse(loop=_loop(view))

    def _start(self, request: pb.StartLoopRequest) -> View:
        """Resume `resume_loop_id`, return the loop of a known `request_id`, or start one."""
        if request.resume_loop_id:
            self.core.get(request.resume_loop_id)  # INVALID_ARGUMENT / NOT_FOUND first
            plan = pb.StartLoopRequest()
            plan.CopyFrom(request)
            plan.ClearField("resume_loop_id")
            plan.ClearField("request_id")
            spec = None if plan == pb.StartLoopRequest() else self.resolve(request_to_spec(plan))
            return self.core.resume(request.resume_loop_id, spec)
        known = self.core.known_request(request.request_id) if request.request_id else None
        if known is not None:
            return known
        spec = self.resolve(request_to_spec(request))
        return self.core.start(spec, request.request_id)

    async def GetLoop(self, request, context: grpc.aio.ServicerContext):
        return pb.GetLoopResponse(loop=_loop(self.core.get(request.loop_id)))

    async def ListLoops(self, request, context: grpc.aio.ServicerContext):
        views, token = self.core.list(request.page_size, request.page_token)
        return pb.ListLoopsResponse(loops=[_loop(v) for v in views], next_page_token=token)

    async def CancelLoop(self, request, context: grpc.aio.ServicerContext):
        view = await asyncio.to_thread(self.core.cancel, request.loop_id, request.reason)
        return pb.CancelLoopResponse(loop=_loop(view))

    async def StreamLoopEvents(self, request, context: grpc.aio.ServicerContext):
        (journal, cancelling), index = self.core.watch(request.loop_id)
        yield convert.current_event(journal, cancelling)
        ended = journal["state"] in TERMINAL
        while not ended:
            events, index, ended = await asyncio.to_thread(
                self.core.wait_events, request.loop_id, index, FOLLOW_POLL_S
            )
            for e in events:
                yield convert.event_to_proto(e.state, e.cancelling, e.round, e.message, e.time)


def _loop(view: View) -> pb.Loop:
    journal, cancelling = view
    return convert.loop_to_proto(journal, cancelling)
