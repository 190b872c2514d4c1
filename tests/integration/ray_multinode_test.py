"""The Ray path on two nodes: a second Ray node joins a head on this machine (`ray start
--address`), each node offering the custom resource `train` once. Then

(1) the trainer service, in its own process and joined to the cluster as a driver on this host
    (AUTOPERI_TRAINER_RAY_ADDRESS = the head's GCS address), runs a 2-worker TorchTrainer run
    on Perov-5 crystals whose workers each reserve `train` (AUTOPERI_TRAINER_WORKER_RESOURCES_JSON):
    one worker per node, by the Ray state API;
(2) the sampler's Serve config from infra/k8s/sampler-rayservice.yaml, deployed through the
    dashboard's Serve REST API as KubeRay deploys it, puts one replica on each node
    (max_replicas_per_node 1), and a real Sample request to each node's Serve proxy is answered
    by that node's replica, as the replicas' access logs show.

Every process started here is ended afterwards, even on failure (ray_nodes.LocalRayCluster:
the nodes' own process sessions, never `ray stop`).
"""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
import pytest
import yaml
from autoperi.training.v1 import training_pb2 as pb
from ray_nodes import LocalRayCluster, free_port, ray_env, session_pids
from storage import LocalObjectStore
from trainer_svc.client import start_run, wait
from trainer_svc.testing import perov_subset, shard_refs, tiny_config_yaml, verified_checkpoint

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
RAYSERVICE = REPO / "infra" / "k8s" / "sampler-rayservice.yaml"
HEALTHCHECK = REPO / "infra" / "docker" / "healthcheck.py"
NODE_CPUS = 2


@pytest.fixture(scope="module")
def cluster():
    """A head and a worker node (`node-b`, whose Serve proxy gets ports of its own: both nodes
    share this machine's addresses)."""
    root = Path(tempfile.mkdtemp(prefix="apmn-"))  # short: Ray's socket paths are limited
    nodes = LocalRayCluster(root)
    nodes.worker_proxy_grpc_port = free_port()
    started = time.monotonic()
    try:
        nodes.start_head(NODE_CPUS, {"train": 1})
        nodes.add_node(
            "node-b",
            NODE_CPUS,
            {"train": 1},
            RAY_SERVE_WORKER_PROXY_GRPC_PORT=str(nodes.worker_proxy_grpc_port),
            RAY_SERVE_WORKER_PROXY_HTTP_PORT=str(free_port()),
        )
        nodes.ids = nodes.wait_for_nodes()
        print(f"2 Ray nodes up in {time.monotonic() - started:.1f}s")
        yield nodes
    finally:
        killed = nodes.stop()
        left = [pid for node in nodes.nodes for pid in session_pids(node.sid)]
        shutil.rmtree(root, ignore_errors=True)
        print(f"Ray nodes stopped ({len(killed)} processes needed SIGKILL)")
        assert not left, f"processes left running: {left}"


@contextlib.contextmanager
def service_process(module: str, env: dict[str, str], log: Path):
    """`python -m module` in a session of its own; SIGTERM (then SIGKILL) on the way out."""
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", module],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def test_two_training_workers_run_one_on_each_node(cluster, data_dir, tmp_path):
    objects = LocalObjectStore(tmp_path / "store", durable=False)
    shards = shard_refs(objects, perov_subset(data_dir, 64), tmp_path / "cache")
    port = free_port()
    env = ray_env(
        AUTOPERI_TRAINER_HOST="127.0.0.1",
        AUTOPERI_TRAINER_PORT=str(port),
        AUTOPERI_TRAINER_STORAGE_URI=str(objects.root),
        AUTOPERI_TRAINER_RAY_ADDRESS=cluster.gcs_address,
        AUTOPERI_TRAINER_RAY_STORAGE_PATH=str(tmp_path / "ray-train"),
        AUTOPERI_TRAINER_WORKER_RESOURCES_JSON='{"train": 1}',
        AUTOPERI_TRAINER_LOG_JSON="false",
        AUTOPERI_TRAINER_POLL_S="0.2",
    )
    started = time.monotonic()
    log = tmp_path / "trainer.log"
    with (
        service_process("trainer_svc.main", env, log) as trainer,
        grpc.insecure_channel(f"127.0.0.1:{port}") as channel,
    ):
        try:
            grpc.channel_ready_future(channel).result(timeout=180)
        except grpc.FutureTimeoutError:
            raise AssertionError(f"trainer did not serve:\n{log.read_text()[-3000:]}") from None
        run = start_run(
            channel,
            name="two-nodes",
            config_yaml=tiny_config_yaml(max_steps=4, checkpoint_every_steps=2),
            train_shards=shards,
            resources=pb.Resources(num_workers=2, cpus_per_worker=1),
            seed=1,
        )
        run = wait(channel, run.run_id, timeout=600)
        assert trainer.poll() is None
    print(f"2-worker run over 2 nodes: {time.monotonic() - started:.1f}s")
    assert run.state == pb.RUN_STATE_SUCCEEDED, f"{run.error.message}\n{log.read_text()[-3000:]}"
    assert run.step == 4 and run.num_restarts == 0
    workers = cluster.actors("RayTrainWorker")
    assert len(workers) == 2, workers
    assert {w["node_id"] for w in workers} == set(cluster.ids.values())
    verified_checkpoint(objects, run.latest_checkpoint, tmp_path / "checkpoint")


def deployed_sampler(cluster, timeout_s: float = 300.0) -> dict:
    """The sampler app's details once it runs and a proxy serves on every node."""
    deadline, details = time.monotonic() + timeout_s, {}
    while time.monotonic() < deadline:
        details = cluster.get_json("/api/serve/applications/")
        app = details.get("applications", {}).get("sampler", {})
        proxies = [p for p in details.get("proxies", {}).values() if p["status"] == "HEALTHY"]
        if app.get("status") == "DEPLOY_FAILED":
            raise AssertionError(app.get("message"))
        if app.get("status") == "RUNNING" and len(proxies) == len(cluster.nodes):
            return app
        time.sleep(2.0)
    raise AssertionError(f"the sampler did not come up: {details}")


def served_calls(log: Path) -> int:
    """Requests a replica's access log records as answered."""
    text = log.read_text() if log.exists() else ""
    return sum(1 for line in text.splitlines() if "-- CALL sampler OK" in line)


def test_sampler_replicas_on_both_nodes_each_answer_through_their_nodes_proxy(cluster):
    from sampler_svc.client import sample

    manifest = yaml.safe_load(RAYSERVICE.read_text())
    config = yaml.safe_load(manifest["spec"]["serveConfigV2"])
    (app,) = config["applications"]
    assert app["args"]["num_replicas"] == 2
    assert app["deployments"][0]["max_replicas_per_node"] == 1
    # Local stand-ins for what differs on one machine: ports, checkpoint path, loopback HTTP.
    head_port = config["grpc_options"]["port"] = free_port()
    config["http_options"] = {"host": "127.0.0.1", "port": free_port()}
    app["args"]["checkpoint"] = str(REPO / "checkpoints" / "perov_5_csp")
    app["logging_config"]["enable_access_log"] = True  # to see which replica answered
    started = time.monotonic()
    assert cluster.put_json("/api/serve/applications/", config) == 200
    details = deployed_sampler(cluster)
    print(f"sampler on 2 nodes: {time.monotonic() - started:.1f}s")
    replicas = details["deployments"]["SamplerDeployment"]["replicas"]
    assert [r["state"] for r in replicas] == ["RUNNING", "RUNNING"]
    node_of = {v: k for k, v in cluster.ids.items()}
    by_node = {node_of[r["node_id"]]: r for r in replicas}
    assert set(by_node) == {"head", "node-b"}  # replica node ids differ: one per node
    logs = {
        name: cluster.logs_dir(name) / r["log_file_path"].lstrip("/") for name, r in by_node.items()
    }
    proxy_ports = {"head": head_port, "node-b": cluster.worker_proxy_grpc_port}
    for name, port in proxy_ports.items():
        before = {n: served_calls(path) for n, path in logs.items()}
        crystals = sample(f"127.0.0.1:{port}", "SrTiO3", n=3, steps=2, seed=7, timeout=120)
        assert [c.formula for c in crystals] == ["SrTiO3"] * 3
        assert all(c.num_atoms == 5 for c in crystals)
        deadline = time.monotonic() + 20
        while served_calls(logs[name]) == before[name] and time.monotonic() < deadline:
            time.sleep(0.5)  # the access log line is written just after the reply
        after = {n: served_calls(path) for n, path in logs.items()}
        assert after[name] == before[name] + 1, f"{name}'s replica did not answer: {after}"
        other = "node-b" if name == "head" else "head"
        assert after[other] == before[other], f"{other}'s replica answered {name}'s proxy"
        health = subprocess.run(
            [sys.executable, HEALTHCHECK, f"127.0.0.1:{port}", "--metadata", "application=sampler"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert health.returncode == 0 and "SERVING" in health.stdout, health.stdout
