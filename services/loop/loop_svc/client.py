"""Client of the LoopService: start (or resume) a loop and follow it.

    with open_channel("127.0.0.1:50066") as channel:
        request = spec_to_request(spec)
        request.request_id = "my-loop"  # idempotent: again, the same loop (id my-loop)
        loop = start_loop(channel, request)
        for event in follow(channel, loop.loop_id):
            print(event.message)

Channels come from `svc_kit.open_channel` (TLS and a bearer token from AUTOPERI_TLS_* /
AUTOPERI_AUTH_TOKEN, plaintext without them).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
from autoperi.loop.v1 import loop_pb2 as pb
from autoperi.loop.v1 import loop_pb2_grpc

DEFAULT_ADDRESS = "127.0.0.1:50066"  # `autoperi stack`'s loop service
RETRY_S = 2.0


def stub(channel: grpc.Channel) -> loop_pb2_grpc.LoopServiceStub:
    return loop_pb2_grpc.LoopServiceStub(channel)


def get_loop(channel: grpc.Channel, loop_id: str, timeout: float = 30) -> pb.Loop | None:
    """The loop, or None when the service does not know it."""
    try:
        return stub(channel).GetLoop(pb.GetLoopRequest(loop_id=loop_id), timeout=timeout).loop
    except grpc.RpcError as exc:
        if exc.code() == grpc.StatusCode.NOT_FOUND:
            return None
        raise


def start_loop(channel: grpc.Channel, request: pb.StartLoopRequest, timeout=120) -> pb.Loop:
    """StartLoop: the loop, just started (or resumed, or the one of the same request_id)."""
    return stub(channel).StartLoop(request, timeout=timeout).loop


def follow(
    channel: grpc.Channel, loop_id: str, reconnect_s: float = 120.0
) -> Iterator[pb.StreamLoopEventsResponse]:
    """The loop's events until it ends (the first one is its state when following starts).
    A service that goes away (UNAVAILABLE, CANCELLED) is called again for up to `reconnect_s` s:
    a restarted service resumes the loop, and following starts again with its state."""
    down_since = None
    while True:
        try:
            for event in stub(channel).StreamLoopEvents(
                pb.StreamLoopEventsRequest(loop_id=loop_id)
            ):
                down_since = None
                yield event
            return
        except grpc.RpcError as exc:
            if exc.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
                raise
            down_since = down_since or time.monotonic()
            if time.monotonic() - down_since > reconnect_s:
                raise
            time.sleep(RETRY_S)
