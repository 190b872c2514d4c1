"""The service kit over a real socket: health, error mapping, deadlines, limits, shutdown."""

import asyncio
import logging
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from svc_kit._errors import resolve_error_map
from svc_kit.conftest import SERVICE, MissingThing, echo_call, running

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def _status(channel, service: str) -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    return (await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)).status


async def _code_and_details(call, request: bytes, **kw) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call(request, **kw)
    return info.value.code(), info.value.details() or ""


def test_binds_a_free_port_and_reports_serving():
    async def scenario():
        async with running() as (service, channel):
            assert service.port > 0
            assert await _status(channel, SERVICE) == SERVING
            assert await _status(channel, "") == SERVING
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await _status(channel, "no.such.Service")
            assert info.value.code() == grpc.StatusCode.NOT_FOUND
            assert await echo_call(channel)(b"hello", timeout=5) == b"hello"

    asyncio.run(scenario())


def test_domain_errors_map_to_statuses_with_their_reason():
    async def scenario():
        async with running() as (_, channel):
            call = echo_call(channel)
            code, details = await _code_and_details(call, b"invalid", timeout=5)
            assert code == grpc.StatusCode.INVALID_ARGUMENT and "lattice is singular" in details
            code, details = await _code_and_details(call, b"missing", timeout=5)
            assert code == grpc.StatusCode.NOT_FOUND and "mp-20" in details
            stream = channel.unary_stream(f"/{SERVICE}/Chunks")
            received = []
            with pytest.raises(grpc.aio.AioRpcError) as info:
                async for item in stream(b"ab!c", timeout=5):
                    received.append(item)
            assert received == [b"a", b"b"]
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            collect = channel.stream_unary(f"/{SERVICE}/Collect")
            assert await collect(iter([b"ab", b"cd"]), timeout=5) == b"abcd"
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await collect(iter([b"123456", b"789012"]), timeout=5)
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "limit is 10" in info.value.details()

    asyncio.run(scenario())


def test_unexpected_errors_are_internal_without_a_traceback(caplog):
    async def scenario():
        async with running() as (_, channel):
            return await _code_and_details(echo_call(channel), b"boom", timeout=5)

    with caplog.at_level(logging.INFO, logger="svc_kit"):
        code, details = asyncio.run(scenario())
    assert code == grpc.StatusCode.INTERNAL and details.startswith("internal error (id ")
    assert "secret" not in details and "Traceback" not in details and "RuntimeError" not in details
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info and details[19:31] == errors[0].error_id
    access = [r for r in caplog.records if getattr(r, "rpc_method", "").endswith("/Echo")]
    assert [r.grpc_code for r in access if hasattr(r, "grpc_code")] == ["INTERNAL"]
    assert all(r.duration_ms >= 0 for r in access if hasattr(r, "duration_ms"))


def test_deadlines_are_enforced():
    async def scenario():
        async with running() as (_, channel):
            call = echo_call(channel)
            code, _ = await _code_and_details(call, b"slow1.0", timeout=0.2)
            assert code == grpc.StatusCode.DEADLINE_EXCEEDED
            code, details = await _code_and_details(call, b"deadline", timeout=5)
            assert code == grpc.StatusCode.DEADLINE_EXCEEDED and "featurisation" in details
            assert await call(b"deadline") == b"deadline"  # no deadline: nothing to check

    asyncio.run(scenario())


def test_size_and_concurrency_limits_give_resource_exhausted():
    async def scenario():
        async with running(max_message_bytes=1024, max_concurrent_rpcs=1) as (_, channel):
            call = echo_call(channel)
            code, _ = await _code_and_details(call, b"x" * 4096, timeout=5)
            assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
            slow = asyncio.ensure_future(call(b"slow0.5", timeout=5))
            await asyncio.sleep(0.2)
            code, _ = await _code_and_details(call, b"second", timeout=5)
            assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert await slow == b"slow0.5"

    asyncio.run(scenario())


def test_graceful_stop_finishes_in_flight_calls_and_reports_not_serving():
    async def scenario():
        async with running(shutdown_delay_s=0.3) as (service, channel):
            closed, started = [], time.monotonic()
            service.on_stop.append(lambda: closed.append(time.monotonic() - started))
            watch = health_pb2_grpc.HealthStub(channel).Watch(
                health_pb2.HealthCheckRequest(service=SERVICE)
            )
            assert (await watch.read()).status == SERVING
            in_flight = asyncio.ensure_future(echo_call(channel)(b"slow0.8", timeout=10))
            await asyncio.sleep(0.2)
            stopping = asyncio.ensure_future(service.stop(grace=5))
            assert (await watch.read()).status == NOT_SERVING
            watch.cancel()  # an open watch would hold the server for the whole grace period
            assert await in_flight == b"slow0.8"
            await stopping
            # cleanups run once, after the in-flight call's 0.8 s (stop began at 0.2 s)
            assert len(closed) == 1 and closed[0] >= 0.8
            await service.stop()
            assert len(closed) == 1
            code, _ = await _code_and_details(echo_call(channel), b"late", timeout=2)
            assert code == grpc.StatusCode.UNAVAILABLE

    asyncio.run(scenario())


def test_reflection_lists_the_services():
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
        ProtoReflectionDescriptorDatabase,
    )

    def reflect(address: str) -> set[str]:
        with grpc.insecure_channel(address) as channel:
            return set(ProtoReflectionDescriptorDatabase(channel).get_services())

    async def scenario() -> set[str]:
        async with running(reflection=True) as (service, _):
            return await asyncio.to_thread(reflect, service.address)

    assert {SERVICE, "grpc.health.v1.Health"} <= asyncio.run(scenario())


def test_error_maps_take_status_names_and_reject_unknown_ones():
    resolved = resolve_error_map({MissingThing: "NOT_FOUND", KeyError: grpc.StatusCode.ABORTED})
    assert resolved == {MissingThing: grpc.StatusCode.NOT_FOUND, KeyError: grpc.StatusCode.ABORTED}
    with pytest.raises(ValueError, match="'NOT_FOUNDD', which is not a gRPC status"):
        resolve_error_map({MissingThing: "NOT_FOUNDD"})
