"""The whole platform on one machine: one Ray instance and every service as its own process.

`Stack` starts a local Ray (or joins `ray_address`), then `autoperi serve <service>` for every
service that declares a `StackRole` (`STACK` in its `cli` module, found through the entry points;
today ingest, featurestore, scorer, sampler, trainer and loop) on consecutive ports from
`base_port` in the roles' order (50061-50066 by default), all over one storage location, and
waits until each answers. Logs go to `<log_dir>/<service>.log`. Used by `autoperi stack` (and
`make serve`) and by the demo. Stopping sends SIGTERM to every service (each drains
gracefully), then shuts down the Ray instance it started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from svc_kit.cli_options import StackContext, StackRole

from autoperi_app.serve import service_modules

RAY_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


def stack_roles() -> dict[str, StackRole]:
    """{service: role} of every service that runs in the stack, in start order."""
    roles = {
        n: m.STACK for n, m in service_modules() if isinstance(getattr(m, "STACK", None), StackRole)
    }
    return dict(sorted(roles.items(), key=lambda item: item[1].order))


@dataclass(frozen=True)
class StackConfig:
    """Where the stack keeps its data and which ports and checkpoint it uses."""

    storage_uri: str = "autoperi-data"
    checkpoint: Path = Path("checkpoints/perov_5_csp")
    base_port: int = 50061
    log_dir: Path = Path("build/stack-logs")
    ray_address: str | None = None
    ray_cpus: int = 4
    ready_timeout_s: float = 240.0

    def port(self, service: str) -> int:
        return self.base_port + list(stack_roles()).index(service)

    def address(self, service: str) -> str:
        return f"127.0.0.1:{self.port(service)}"


def service_args(config: StackConfig, service: str, ray_address: str) -> list[str]:
    """The `autoperi serve` arguments of one service in the stack."""
    roles = stack_roles()
    ports = {name: config.base_port + i for i, name in enumerate(roles)}
    context = StackContext(
        config.storage_uri, ray_address, config.checkpoint, config.base_port, ports
    )
    return ["serve", service, "--port", str(ports[service]), *roles[service].args(context)]


def health_ready(address: str) -> bool:
    """True when the gRPC health service at `address` answers SERVING (over TLS when
    AUTOPERI_TLS_CA_FILE is set: `svc_kit.open_channel`)."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from svc_kit import open_channel

    with open_channel(address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=2
        )
    return reply.status == health_pb2.HealthCheckResponse.SERVING


@dataclass
class Stack:
    """A running stack: `addresses` maps service -> host:port."""

    config: StackConfig
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    addresses: dict[str, str] = field(default_factory=dict)
    _owns_ray: bool = False

    def start(self, progress: Callable[[str], None] = lambda _: None) -> None:
        """Start Ray and every service; return when all answer (RuntimeError naming the one
        that exited or timed out, with the tail of its log)."""
        ray_address = self._start_ray()
        self.config.log_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **RAY_ENV, **self._train_storage_env()}
        for service in stack_roles():
            log = open(self.config.log_dir / f"{service}.log", "wb")  # noqa: SIM115
            cmd = [
                sys.executable,
                "-m",
                "autoperi_app.main",
                *service_args(self.config, service, ray_address),
            ]
            self.processes[service] = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, env=env
            )
            progress(f"started {service} (pid {self.processes[service].pid})")
        for service in stack_roles():
            self._wait_ready(service)
            self.addresses[service] = self.config.address(service)
            progress(f"{service} ready on {self.addresses[service]}")

    def _train_storage_env(self) -> dict[str, str]:
        """Ray Train's run folders next to the stack's data when that is a local directory."""
        uri = self.config.storage_uri
        if "://" in uri and not uri.startswith("file://"):
            return {}
        root = Path(uri.removeprefix("file://")).resolve()
        return {"AUTOPERI_TRAINER_RAY_STORAGE_PATH": str(root / "ray-train")}

    def _start_ray(self) -> str:
        import ray

        os.environ.update(RAY_ENV)
        if self.config.ray_address:
            return self.config.ray_address
        ray.init(
            num_cpus=self.config.ray_cpus,
            object_store_memory=300 << 20,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
        self._owns_ray = True
        return ray.get_runtime_context().gcs_address

    def _wait_ready(self, service: str) -> None:
        deadline = time.monotonic() + self.config.ready_timeout_s
        address, process = self.config.address(service), self.processes[service]
        ready = stack_roles()[service].ready or health_ready
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(
                    f"{service} exited with {process.returncode}: {self.log_tail(service)}"
                )
            with contextlib.suppress(grpc.RpcError):
                if ready(address):
                    return
            time.sleep(1.0)
        waited = self.config.ready_timeout_s
        raise RuntimeError(f"{service} not ready after {waited:.0f} s: {self.log_tail(service)}")

    def log_tail(self, service: str, lines: int = 15) -> str:
        path = self.config.log_dir / f"{service}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, grace_s: float = 30.0) -> dict[str, int | None]:
        """SIGTERM every service (reverse order), wait up to `grace_s`, kill stragglers; then
        shut down the Ray instance this stack started. Returns each service's exit code."""
        for service in reversed(list(self.processes)):
            if self.processes[service].poll() is None:
                self.processes[service].send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        codes = {}
        for service, process in self.processes.items():
            try:
                codes[service] = process.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                process.kill()
                codes[service] = process.wait()
        if self._owns_ray:
            import ray

            ray.shutdown()
        return codes


@contextlib.contextmanager
def running_stack(
    config: StackConfig, progress: Callable[[str], None] = lambda _: None
) -> Iterator[Stack]:
    """The started stack; stopped on exit, also when starting it fails half-way."""
    stack = Stack(config)
    try:
        stack.start(progress)
        yield stack
    finally:
        stack.stop()
