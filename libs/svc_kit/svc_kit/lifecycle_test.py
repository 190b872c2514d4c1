"""serve_forever in a real process: SIGTERM drains in-flight calls and exits cleanly."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pydantic
import pytest

import svc_kit
from svc_kit import ServiceSettings, service_config
from svc_kit.conftest import echo_call

_MAIN = """
from svc_kit import serve_forever, ServiceSettings
from svc_kit.conftest import create_echo_server
serve_forever(create_echo_server, ServiceSettings())
"""


class IngestSettings(ServiceSettings):
    model_config = service_config("ingest")


def test_settings_come_from_the_service_prefix(monkeypatch):
    monkeypatch.setenv("AUTOPERI_INGEST_PORT", "50123")
    monkeypatch.setenv("AUTOPERI_INGEST_GRACE_PERIOD_S", "2.5")
    monkeypatch.setenv("AUTOPERI_SCORER_PORT", "1")
    settings = IngestSettings()
    assert (settings.port, settings.grace_period_s, settings.host) == (50123, 2.5, "[::]")
    assert IngestSettings(port=0).port == 0
    monkeypatch.setenv("AUTOPERI_INGEST_PORT", "not-a-port")
    with pytest.raises(pydantic.ValidationError, match="port"):
        IngestSettings()


def _start_service(tmp_path: Path) -> tuple[subprocess.Popen, int]:
    root = str(Path(svc_kit.__file__).resolve().parents[1])
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p),
        "AUTOPERI_SERVICE_HOST": "127.0.0.1",
        "AUTOPERI_SERVICE_PORT": "0",
        "AUTOPERI_SERVICE_GRACE_PERIOD_S": "5",
    }
    log = open(tmp_path / "service.log", "w+")  # noqa: SIM115 - read by the test below
    proc = subprocess.Popen([sys.executable, "-c", _MAIN], stderr=log, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        log.seek(0)
        for line in log:
            record = json.loads(line)
            if "port" in record:
                return proc, record["port"]
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("the service did not report its port")


def test_sigterm_lets_the_in_flight_call_finish_then_exits_zero(tmp_path):
    proc, port = _start_service(tmp_path)

    async def scenario() -> bytes:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = asyncio.ensure_future(echo_call(channel)(b"slow1.0", timeout=10))
            await asyncio.sleep(0.3)
            proc.send_signal(signal.SIGTERM)
            return await call

    try:
        assert asyncio.run(scenario()) == b"slow1.0"
        assert proc.wait(timeout=20) == 0
    finally:
        proc.kill()
    records = [json.loads(line) for line in (tmp_path / "service.log").read_text().splitlines()]
    messages = [r["message"] for r in records]
    assert "shutdown requested" in messages and any(m.startswith("stopping") for m in messages)
    assert any(
        r.get("grpc_code") == "OK" and r.get("rpc_method", "").endswith("/Echo") for r in records
    )
