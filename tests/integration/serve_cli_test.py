"""`autoperi serve ingest` and `autoperi serve featurestore` as real processes on real sockets.

Both commands are started the way a user starts them (`python -m autoperi_app.main serve ...`,
`--port 0`) over one storage directory. Each reports its bound port in its JSON log; the test
waits for grpc.health.v1 SERVING, ingests one crystal through the ingest server, finds that
dataset commit through the featurestore, then sends SIGTERM and expects exit status 0 within the
grace period.
"""

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from autoperi.common.v1 import common_pb2
from autoperi.featurestore.v1 import featurestore_pb2, featurestore_pb2_grpc
from autoperi.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pymatgen.core import Lattice, Structure

GRACE_S = 5.0
START_TIMEOUT_S = 120.0  # the CLI imports the evaluation and model libraries on start
TEARDOWN_S = 30.0


@dataclass
class Served:
    """A service process started by the CLI, and its log (JSON lines on stderr)."""

    name: str
    process: subprocess.Popen
    log_path: Path
    port: int = 0

    def records(self) -> list[dict]:
        """The log's JSON records (lines that are not JSON, e.g. library warnings, skipped)."""
        out = []
        for line in self.log_path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out


def _start(name: str, storage: Path, tmp_path: Path) -> Served:
    env = {
        **os.environ,
        f"AUTOPERI_{name.upper()}_GRACE_PERIOD_S": str(GRACE_S),
        "AUTOPERI_INGEST_PARSE_WORKERS": "1",
    }
    log_path = tmp_path / f"{name}.log"
    command = [sys.executable, "-m", "autoperi_app.main", "serve", name, "--host", "127.0.0.1"]
    command += ["--port", "0", "--storage-uri", str(storage)]
    with log_path.open("w") as log:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log, env=env)
    return Served(name, process, log_path)


def _wait_for_port(served: Served) -> int:
    """The port the service logged once serving; fails with its log if it exits or hangs."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        ports = [r["port"] for r in served.records() if "port" in r]
        if ports:
            return ports[0]
        if served.process.poll() is not None:
            break
        time.sleep(0.2)
    raise AssertionError(f"{served.name} did not report its port:\n{served.log_path.read_text()}")


@pytest.fixture
def services(tmp_path):
    """Both services started by the CLI over one storage directory; killed if still running."""
    storage = tmp_path / "store"
    started = [_start(name, storage, tmp_path) for name in ("ingest", "featurestore")]
    try:
        for served in started:
            served.port = _wait_for_port(served)
        yield {served.name: served for served in started}
    finally:
        for served in started:
            if served.process.poll() is None:
                served.process.kill()
                served.process.wait(timeout=30)


def _serving(channel: grpc.Channel, service: str) -> bool:
    stub = health_pb2_grpc.HealthStub(channel)
    reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
    return reply.status == health_pb2.HealthCheckResponse.SERVING


def _ingest_one(channel: grpc.Channel) -> ingest_pb2.IngestResponse:
    header = ingest_pb2.IngestHeader(dataset="cli-served", create_dataset=True, message="nacl")
    nacl = Structure(Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    chunk = ingest_pb2.CifChunk(file_name="nacl.cif", text=nacl.to(fmt="cif"))
    requests = [ingest_pb2.IngestRequest(header=header), ingest_pb2.IngestRequest(cif=chunk)]
    return ingest_pb2_grpc.IngestServiceStub(channel).Ingest(iter(requests), timeout=120)


def _lookup(channel: grpc.Channel) -> featurestore_pb2.FeatureSet:
    request = featurestore_pb2.GetFeaturesRequest(
        dataset=common_pb2.DatasetRef(dataset="cli-served"), lookup_only=True
    )
    stub = featurestore_pb2_grpc.FeatureStoreServiceStub(channel)
    return stub.GetFeatures(request, timeout=30).feature_set


def _stop(served: Served) -> None:
    """SIGTERM; asserts exit status 0 within the grace period plus the interpreter's teardown
    (the CLI process holds torch and Ray, whose finalisers take seconds on a loaded machine)."""
    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(timeout=GRACE_S + TEARDOWN_S) == 0, served.log_path.read_text()


def test_served_by_the_cli_answer_and_stop_cleanly_on_sigterm(services):
    ingest, featurestore = services["ingest"], services["featurestore"]
    with (
        grpc.insecure_channel(f"127.0.0.1:{ingest.port}") as ingest_channel,
        grpc.insecure_channel(f"127.0.0.1:{featurestore.port}") as feature_channel,
    ):
        assert _serving(ingest_channel, "autoperi.ingest.v1.IngestService")
        assert _serving(feature_channel, "autoperi.featurestore.v1.FeatureStoreService")
        reply = _ingest_one(ingest_channel)
        assert (reply.num_accepted, reply.num_rejected) == (1, 0) and reply.commit_id
        feature_set = _lookup(feature_channel)
        assert feature_set.dataset_commit == reply.commit_id  # one store, two processes
        assert {a.state for a in feature_set.artifacts} == {featurestore_pb2.BUILD_STATE_MISSING}
    for served in (ingest, featurestore):
        _stop(served)
        messages = [r["message"] for r in served.records()]
        assert "shutdown requested" in messages, messages
        rpcs = [r for r in served.records() if r.get("grpc_code")]
        assert rpcs and all(r["grpc_code"] == "OK" for r in rpcs)
