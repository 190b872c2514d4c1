"""Ray nodes started with `ray start --block` on this machine, for multi-node tests.

Each node is one `ray start` process in a process session of its own, with a private temp dir
and explicit ports, so several nodes (and other Ray instances on the machine) never share a port
or a socket. `stop()` ends exactly the processes of those sessions: SIGTERM to each session's
process group, then SIGKILL to whatever is left after a grace period. It never runs `ray stop`,
which would end every Ray process on the machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from sampler_svc.testing import free_port

RAY = str(Path(sys.executable).with_name("ray"))
START_TIMEOUT_S = 120.0


def ray_env(**extra: str) -> dict[str, str]:
    """This process's environment for a local Ray: no token authentication (loopback only), no
    usage statistics, plus `extra`."""
    return {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0", **extra}


def marker_resource(node_name: str) -> str:
    """A custom resource only the node `node_name` has (amount 1), by which it is recognised."""
    return f"autoperi_test_node_{node_name.replace('-', '_')}"


def session_pids(sid: int) -> list[int]:
    """Live processes of the process session `sid` (zombies, which only await reaping, left out)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                state = Path(f"/proc/{entry}/stat").read_text().rpartition(")")[2].split()[0]
                if os.getsid(int(entry)) == sid and state != "Z":
                    pids.append(int(entry))
    return pids


@dataclass
class RayNode:
    """One `ray start --block` process (a session leader) and where it logs."""

    name: str
    process: subprocess.Popen
    temp_dir: Path
    log_path: Path
    resources: dict[str, float]

    @property
    def sid(self) -> int:
        return self.process.pid

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass
class LocalRayCluster:
    """A head node and worker nodes on this machine, under `root` (short: Ray puts unix sockets
    there, whose paths are limited to ~100 characters)."""

    root: Path
    object_store_bytes: int = 150 << 20
    nodes: list[RayNode] = field(default_factory=list)
    gcs_port: int = 0
    dashboard_port: int = 0
    client_port: int = 0

    @property
    def gcs_address(self) -> str:
        return f"127.0.0.1:{self.gcs_port}"

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    @property
    def client_address(self) -> str:
        return f"ray://127.0.0.1:{self.client_port}"

    def start_head(self, num_cpus: int, resources: dict[str, float]) -> RayNode:
        """The head node, with the dashboard (state and Serve REST APIs) on loopback."""
        self.gcs_port, self.dashboard_port = free_port(), free_port()
        self.client_port = free_port()
        args = [
            "--head",
            f"--port={self.gcs_port}",
            "--include-dashboard=true",
            "--dashboard-host=127.0.0.1",
            f"--dashboard-port={self.dashboard_port}",
            f"--ray-client-server-port={self.client_port}",
        ]
        return self._start("head", args, num_cpus, resources, ray_env())

    def add_node(self, name: str, num_cpus: int, resources: dict[str, float], **env) -> RayNode:
        """A worker node joining the head (`ray start --address`); `env` for its processes."""
        args = [f"--address={self.gcs_address}"]
        return self._start(name, args, num_cpus, resources, ray_env(**env))

    def _start(self, name, args, num_cpus, resources, env) -> RayNode:
        temp_dir = self.root / name
        temp_dir.mkdir(parents=True, exist_ok=True)
        resources = {**resources, marker_resource(name): 1}  # tells the nodes apart
        log_path = self.root / f"{name}.log"
        command = [
            RAY,
            "start",
            *args,
            "--node-ip-address=127.0.0.1",
            f"--num-cpus={num_cpus}",
            f"--resources={json.dumps(resources)}",
            f"--object-store-memory={self.object_store_bytes}",
            f"--temp-dir={temp_dir}",
            f"--dashboard-agent-listen-port={free_port()}",
            f"--dashboard-agent-grpc-port={free_port()}",
            f"--metrics-export-port={free_port()}",
            f"--runtime-env-agent-port={free_port()}",
            "--disable-usage-stats",
            "--block",
        ]
        with log_path.open("w") as log:
            process = subprocess.Popen(
                command,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        node = RayNode(name, process, temp_dir, log_path, resources)
        self.nodes.append(node)
        self._wait_started(node)
        return node

    def _wait_started(self, node: RayNode) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if "Ray runtime started" in node.log_text():
                return
            if node.process.poll() is not None:
                raise RuntimeError(f"ray start ({node.name}) exited:\n{node.log_text()[-3000:]}")
            time.sleep(0.5)
        raise TimeoutError(f"ray start ({node.name}) did not start:\n{node.log_text()[-3000:]}")

    def node_ids(self) -> dict[str, str]:
        """Node name -> Ray node id of the alive nodes, from the state API."""
        reply = self.get_json("/api/v0/nodes?detail=1&limit=100")["data"]["result"]["result"]
        ids = {}
        for node in reply:
            if node["state"] == "ALIVE":
                for ours in self.nodes:
                    if marker_resource(ours.name) in node["resources_total"]:
                        ids[ours.name] = node["node_id"]
        return ids

    def wait_for_nodes(self, timeout_s: float = 120.0) -> dict[str, str]:
        """Block until every node started here is alive in the cluster; node name -> node id."""
        deadline, ids = time.monotonic() + timeout_s, {}
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, KeyError, ValueError):
                ids = self.node_ids()
                if len(ids) == len(self.nodes):
                    return ids
            time.sleep(1.0)
        raise TimeoutError(f"{len(ids)} of {len(self.nodes)} Ray nodes came up")

    def actors(self, class_name: str) -> list[dict]:
        """The cluster's actors of `class_name`, dead ones included (node_id, pid, state)."""
        found = self.get_json("/api/v0/actors?detail=1&limit=10000")["data"]["result"]["result"]
        return [actor for actor in found if actor["class_name"] == class_name]

    def put_json(self, path: str, body, timeout_s: float = 60.0) -> int:
        """PUT a JSON body to a dashboard REST path; the HTTP status."""
        request = urllib.request.Request(
            self.dashboard_url + path,
            data=json.dumps(body).encode(),
            method="PUT",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=timeout_s) as reply:
            return reply.status

    def logs_dir(self, node_name: str) -> Path:
        """The current session's log folder of a node."""
        node = next(n for n in self.nodes if n.name == node_name)
        return node.temp_dir / "session_latest" / "logs"

    def get_json(self, path: str, timeout_s: float = 10.0):
        """GET a dashboard REST path as JSON."""
        with urllib.request.urlopen(self.dashboard_url + path, timeout=timeout_s) as reply:
            return json.loads(reply.read())

    def stop(self, grace_s: float = 15.0) -> list[int]:
        """End every process of every node's session: SIGTERM to each session's process group,
        SIGKILL to what is left after `grace_s`, then wait until none is alive. Returns the pids
        that had to be SIGKILLed; raises if any process survives."""
        for node in reversed(self.nodes):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(node.sid, signal.SIGTERM)
        killed = self._wait_gone(grace_s)
        for pid in killed:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if killed and self._wait_gone(15.0):
            raise RuntimeError(f"Ray processes survived SIGKILL: {self._wait_gone(0)}")
        return killed

    def _wait_gone(self, timeout_s: float) -> list[int]:
        """Reap the `ray start` processes and wait for the sessions to empty; what is left."""
        deadline = time.monotonic() + timeout_s
        while True:
            for node in self.nodes:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    node.process.wait(timeout=0)
            left = [pid for node in self.nodes for pid in session_pids(node.sid)]
            if not left or time.monotonic() >= deadline:
                return left
            time.sleep(0.5)
