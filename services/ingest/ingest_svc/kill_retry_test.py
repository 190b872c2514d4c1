"""An ingest server SIGKILLed between the head update and the reply: the client's retry with the
same request id returns the commit the killed server made, and adds no commit.

The server is a real process (`_SERVER`, over a real store directory). Its store's `commit` is
wrapped, in this test only, so that when the file `armed` exists it removes the file, commits
and SIGKILLs its own process: the branch head has moved and no reply has been built. The test
then restarts the server on the same store and retries. Each trial ingests a different crystal.
"""

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from autoperi.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from storage import open_version_store

from ingest_svc.client import header_request
from ingest_svc.server_test import GOOD_CIF

DATASET = "killed"
START_TIMEOUT_S = 120.0
_SERVER = """
import os, signal, sys
from storage import open_version_store
from svc_kit import serve_forever
from ingest_svc import IngestDeps, IngestSettings, create_server

store, armed = sys.argv[1:3]
versions = open_version_store(store)
commit = versions.commit

def commit_then_die_if_armed(*args, **kwargs):
    if not os.path.exists(armed):
        return commit(*args, **kwargs)
    os.remove(armed)
    commit(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)

versions.commit = commit_then_die_if_armed
settings = IngestSettings(host="127.0.0.1", port=0, parse_workers=1, log_json=True)
serve_forever(lambda s: create_server(s, IngestDeps(versions)), settings)
"""


@dataclass
class Server:
    """One life of the server process, its log and the port it reported."""

    process: subprocess.Popen
    log: Path
    address: str = ""

    def wait_for_port(self) -> None:
        """Set `address` once the server logs its port; fails with its log if it never does."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and self.process.poll() is None:
            ports = [r["port"] for r in _json_lines(self.log) if "port" in r]
            if ports:
                self.address = f"127.0.0.1:{ports[0]}"
                return
            time.sleep(0.05)
        raise AssertionError(f"the server did not report its port:\n{self.log.read_text()}")

    def stop(self) -> None:
        """SIGTERM (a graceful stop), SIGKILL if that takes over 30 s; a no-op once ended."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(30)


def _json_lines(path: Path) -> list[dict]:
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


@dataclass
class Servers:
    """Lives of the server over one store: `start()` starts the next; `armed` is the file whose
    presence makes the next commit the server's last act; parsers' scratch under `scratch`."""

    root: Path
    started: list[Server] = field(default_factory=list)

    @property
    def store(self) -> str:
        return str(self.root / "store")

    @property
    def armed(self) -> Path:
        return self.root / "armed"

    @property
    def scratch(self) -> Path:
        return self.root / "tmp"

    def start(self) -> Server:
        """Start the next life of the server and wait until it serves."""
        log = self.root / f"server-{len(self.started)}.log"
        command = [sys.executable, "-c", _SERVER, self.store, str(self.armed)]
        env = {**os.environ, "TMPDIR": str(self.scratch)}
        with log.open("w") as out:
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=out, env=env)
        self.started.append(Server(process, log))
        self.started[-1].wait_for_port()
        return self.started[-1]


@pytest.fixture
def servers(tmp_path):
    """Servers over a store holding the empty dataset; all stopped at the end."""
    servers = Servers(tmp_path)
    servers.scratch.mkdir()
    open_version_store(servers.store).create_repository(DATASET)
    try:
        yield servers
    finally:
        for server in servers.started:
            server.stop()


def _ingest(address: str, trial: int) -> ingest_pb2.IngestResponse:
    """Trial `trial`'s ingest: its own crystal (a distinct cell), request id and message."""
    cif = GOOD_CIF.replace("5.64", f"{5.0 + trial / 100:.2f}")
    messages = [
        header_request(DATASET, request_id=f"trial-{trial}", message=f"trial {trial}"),
        ingest_pb2.IngestRequest(cif=ingest_pb2.CifChunk(file_name="x.cif", text=cif)),
    ]
    with grpc.insecure_channel(address) as channel:
        return ingest_pb2_grpc.IngestServiceStub(channel).Ingest(iter(messages), timeout=120)


def _log(versions) -> list[str]:
    return [c.id for c in versions.log(DATASET, versions.head(DATASET, "main"))]


def _no_scratch_left(scratch: Path, timeout_s: float = 30.0) -> bool:
    """Whether every parser's scratch directory is gone (parsers of a killed server remove their
    own when their input closes)."""
    deadline = time.monotonic() + timeout_s
    while any(scratch.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not any(scratch.iterdir())


def _trial(servers: Servers, server: Server, versions, trial: int) -> Server:
    """Kill `server` right after its commit, restart, retry; returns the restarted server."""
    before = _log(versions)
    servers.armed.touch()
    with pytest.raises(grpc.RpcError) as info:
        _ingest(server.address, trial)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE, info.value
    assert server.process.wait(30) == -signal.SIGKILL
    committed = _log(versions)
    assert committed[1:] == before  # the killed server made exactly one commit
    server = servers.start()
    retry = _ingest(server.address, trial)
    assert (retry.commit_id, retry.parent_commit_id) == (committed[0], before[0])
    assert (retry.num_accepted, retry.num_duplicates) == (1, 0)
    assert _log(versions) == committed  # the retry added none
    return server


@pytest.mark.parametrize(
    "trials",
    [pytest.param(2, id="2-trials"), pytest.param(20, id="20-trials", marks=pytest.mark.slow)],
)
def test_a_retry_after_a_kill_between_commit_and_reply_returns_the_same_commit(servers, trials):
    versions = open_version_store(servers.store)
    server = servers.start()
    for trial in range(trials):
        server = _trial(servers, server, versions, trial)
    messages = [versions.get_commit(DATASET, c).message for c in _log(versions)[:trials]]
    assert messages == [f"trial {t}" for t in reversed(range(trials))]
    server.stop()
    assert _no_scratch_left(servers.scratch)
