"""A loop waits for the services it calls to accept connections (a restarted stack starts them
together), and names the one that never does."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from sampler_svc.testing import free_port

from loop_svc._run import Addresses, ServiceUnavailable, wait_for_services


def _free_address() -> str:
    return f"127.0.0.1:{free_port()}"


def _serve(address: str) -> grpc.Server:
    server = grpc.server(ThreadPoolExecutor(max_workers=1))
    server.add_insecure_port(address)
    server.start()
    return server


def test_a_service_that_comes_up_late_is_waited_for():
    address = _free_address()
    servers: list[grpc.Server] = []
    timer = threading.Timer(1.0, lambda: servers.append(_serve(address)))
    timer.start()
    start = time.monotonic()
    try:
        wait_for_services(Addresses(address, address, address, address), timeout_s=30)
        assert time.monotonic() - start >= 0.9
    finally:
        timer.join()
        for server in servers:
            server.stop(None)


def test_a_service_that_never_answers_is_named():
    up, down = _free_address(), _free_address()
    server = _serve(up)
    try:
        with pytest.raises(ServiceUnavailable, match=rf"the scorer service at {down} did not"):
            wait_for_services(Addresses(ingest=up, scorer=down, sampler=up, trainer=up), 1.0)
        wait_for_services(Addresses(up, down, up, up), 1.0, skip=("scorer",))
    finally:
        server.stop(None)
