"""infra/k8s held against the code: images are Dockerfile targets, variables are settings the
services read (and validate), probes and Services use each server's port, every reference
(ConfigMap, Secret, claim, address) resolves, the trainer reaches the training RayCluster, and
the RayService builds the sampler app behind Serve's gRPC proxy."""

import inspect
import json
import re

import yaml
from infra_spec import (
    REPO,
    SERVICES,
    STORAGE_ENV,
    k8s_object,
    k8s_objects,
    known_env,
)
from ray.serve._private.api import call_user_app_builder_with_args_if_necessary
from sampler_svc import SERVICER_FUNCTIONS

GRPC_SERVERS = ("ingest", "featurestore", "scorer", "trainer")
_UNITS = {"m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}


def quantity(value) -> float:
    number, unit = re.fullmatch(r"([0-9.]+)([a-zA-Z]*)", str(value)).groups()
    return float(number) * _UNITS.get(unit, 1.0)


def pod_specs() -> list[tuple[str, dict]]:
    """(where, pod spec) of every pod any manifest makes."""
    pods = []
    for doc in k8s_objects():
        kind, name = doc["kind"], doc["metadata"].get("name", "loop")
        if kind in ("Deployment", "Job"):
            pods.append((f"{kind}/{name}", doc["spec"]["template"]["spec"]))
        elif kind in ("RayCluster", "RayService"):
            spec = doc["spec"] if kind == "RayCluster" else doc["spec"]["rayClusterConfig"]
            pods.append((f"{kind}/{name}/head", spec["headGroupSpec"]["template"]["spec"]))
            for group in spec.get("workerGroupSpecs", []):
                pods.append((f"{kind}/{name}/{group['groupName']}", group["template"]["spec"]))
    return pods


def container(kind: str, name: str) -> dict:
    return k8s_object(kind, name)["spec"]["template"]["spec"]["containers"][0]


def plain_env(spec: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in spec.get("env", []) if "value" in e}


def test_every_pod_runs_our_images_unprivileged_with_requests_and_limits():
    targets = set(SERVICES) | {"base"}
    assert len(pod_specs()) == 9  # 4 Deployments, the loop Job, 2 Ray groups of 2 clusters
    for where, pod in pod_specs():
        security = pod["securityContext"]
        assert security["runAsNonRoot"] is True and security["runAsUser"] == 10001, where
        for c in pod["containers"]:
            image, _, tag = c["image"].partition(":")
            assert image.split("/")[0] == "autoperi" and image.split("/")[1] in targets, where
            assert tag == "0.1.0", where
            resources = c["resources"]
            for key in ("cpu", "memory"):
                request, limit = resources["requests"][key], resources["limits"][key]
                assert 0 < quantity(request) <= quantity(limit), f"{where}: {key}"


def test_config_maps_secrets_and_claims_that_pods_use_exist():
    objects = {(d["kind"], d["metadata"].get("name")): d for d in k8s_objects()}
    for where, pod in pod_specs():
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for c in pod["containers"]:
            for source in c.get("envFrom", []):
                ((kind, ref),) = source.items()
                kind = {"configMapRef": "ConfigMap", "secretRef": "Secret"}[kind]
                assert (kind, ref["name"]) in objects, f"{where}: {kind}/{ref['name']}"
            for env in c.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    secret = objects[("Secret", ref["name"])]
                    assert ref["key"] in secret["stringData"], f"{where}: {ref}"
            for mount in c.get("volumeMounts", []):
                assert mount["name"] in volumes, f"{where}: {mount['name']}"
        for volume in volumes.values():
            claim = volume.get("persistentVolumeClaim")
            if claim:
                assert ("PersistentVolumeClaim", claim["claimName"]) in objects, where
    config = k8s_object("ConfigMap", "autoperi-storage")["data"]
    secret = k8s_object("Secret", "autoperi-storage-credentials")["stringData"]
    assert set(config) | set(secret) <= STORAGE_ENV


def test_grpc_servers_probe_and_serve_their_port_with_settings_the_code_reads():
    for name in GRPC_SERVERS:
        service = SERVICES[name]
        spec = container("Deployment", f"autoperi-{name}")
        assert spec["image"] == f"autoperi/{name}:0.1.0"
        assert [p["containerPort"] for p in spec["ports"]] == [service.port]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert spec[probe]["grpc"]["port"] == service.port, f"{name}: {probe}"
        kube_service = k8s_object("Service", f"autoperi-{name}")["spec"]
        assert kube_service["ports"][0]["port"] == service.port
        assert kube_service["ports"][0]["targetPort"] == spec["ports"][0]["name"]
        pod_labels = k8s_object("Deployment", f"autoperi-{name}")["spec"]["template"]["metadata"]
        assert kube_service["selector"].items() <= pod_labels["labels"].items()
        names = {e["name"] for e in spec["env"]}
        assert names <= known_env(name), f"{name}: {names - known_env(name)}"
        own = {k: v for k, v in plain_env(spec).items() if k in service.env_names()}
        prefix = f"AUTOPERI_{name.upper()}_"
        service.settings_class().model_validate(
            {k.removeprefix(prefix).lower(): v for k, v in own.items()}
        )


def test_the_trainer_drives_the_training_raycluster():
    trainer = container("Deployment", "autoperi-trainer")
    env = plain_env(trainer)
    cluster = k8s_object("RayCluster", "autoperi-train")["spec"]
    head = cluster["headGroupSpec"]["template"]["spec"]["containers"][0]
    client_port = next(p["containerPort"] for p in head["ports"] if p["name"] == "client")
    assert env["AUTOPERI_TRAINER_RAY_ADDRESS"] == f"ray://autoperi-train-head-svc:{client_port}"
    assert cluster["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    (group,) = cluster["workerGroupSpecs"]
    offered = json.loads(json.loads(group["rayStartParams"]["resources"]))
    wanted = json.loads(env["AUTOPERI_TRAINER_WORKER_RESOURCES_JSON"])
    assert wanted and all(offered.get(k, 0) >= v for k, v in wanted.items())
    assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
    assert group["replicas"] >= 2  # a 2-worker run gets a pod per worker
    # Token auth: the cluster's Secret is the token the trainer presents.
    token = next(e for e in trainer["env"] if e["name"] == "RAY_AUTH_TOKEN")
    assert token["valueFrom"]["secretKeyRef"]["name"] == cluster["authOptions"]["secretName"]
    assert env["RAY_AUTH_MODE"] == cluster["authOptions"]["mode"] == "token"
    # Ray Train storage: the same claim at the same path in the trainer and every Ray pod.
    path = env["AUTOPERI_TRAINER_RAY_STORAGE_PATH"]
    trainer_pod = k8s_object("Deployment", "autoperi-trainer")["spec"]["template"]["spec"]
    for pod in (
        trainer_pod,
        cluster["headGroupSpec"]["template"]["spec"],
        group["template"]["spec"],
    ):
        mounts = {m["mountPath"]: m["name"] for m in pod["containers"][0]["volumeMounts"]}
        claims = {v["name"]: v.get("persistentVolumeClaim", {}) for v in pod["volumes"]}
        assert claims[mounts[path]]["claimName"] == "autoperi-ray-train"
    featurestore = k8s_object("Service", "autoperi-featurestore")["spec"]["ports"][0]["port"]
    assert env["AUTOPERI_TRAINER_FEATURESTORE_ADDRESS"] == f"autoperi-featurestore:{featurestore}"
    assert (
        env["AUTOPERI_TRAINER_STORAGE_URI"]
        == plain_env(container("Deployment", "autoperi-featurestore"))[
            "AUTOPERI_FEATURESTORE_STORAGE_URI"
        ]
    )


def test_the_rayservice_builds_the_sampler_behind_serves_grpc_proxy():
    service = k8s_object("RayService", "autoperi-sampler")["spec"]
    config = yaml.safe_load(service["serveConfigV2"])
    assert config["grpc_options"]["grpc_servicer_functions"] == list(SERVICER_FUNCTIONS)
    (app,) = config["applications"]
    module, _, attribute = app["import_path"].partition(":")
    builder = getattr(__import__(module, fromlist=[attribute]), attribute)
    inside = app["args"]["checkpoint"]  # the image's copy of the repository's checkpoints/
    args = {**app["args"], "checkpoint": str(REPO / inside.removeprefix("/app/"))}
    application = call_user_app_builder_with_args_if_necessary(builder, args)
    deployment = application._bound_deployment
    assert [d["name"] for d in app["deployments"]] == [deployment.name]
    assert app["args"]["checkpoint"].startswith("/app/checkpoints/")  # inside the image
    cluster = service["rayClusterConfig"]
    grpc_port = config["grpc_options"]["port"]
    for pod in [cluster["headGroupSpec"]["template"]["spec"]] + [
        g["template"]["spec"] for g in cluster["workerGroupSpecs"]
    ]:
        ports = {p["name"]: p["containerPort"] for p in pod["containers"][0]["ports"]}
        assert ports["grpc"] == grpc_port and ports["serve"] == config["http_options"]["port"]
    assert service["serveService"]["spec"]["ports"][0]["targetPort"] == grpc_port
    assert service["serveService"]["spec"]["ports"][0]["port"] == SERVICES["sampler"].port
    # Replicas spread one per node over the worker pods (the head offers no CPU).
    assert app["deployments"][0]["max_replicas_per_node"] == 1
    assert cluster["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    (group,) = cluster["workerGroupSpecs"]
    assert deployment.num_replicas <= group["minReplicas"]
    assert app["args"]["replica_cpus"] <= float(group["rayStartParams"]["num-cpus"])


def test_the_loop_job_runs_the_loop_and_calls_the_services_by_their_kubernetes_names():
    from loop_svc.cli import loop

    job = k8s_object_generated("Job")
    spec = job["spec"]["template"]["spec"]["containers"][0]
    flags = {arg.removeprefix("--") for arg in spec["args"] if "=" not in arg}
    options = dict(arg.removeprefix("--").split("=", 1) for arg in spec["args"] if "=" in arg)
    parameters = {p.replace("_", "-") for p in inspect.signature(loop).parameters}
    assert set(options) | flags <= parameters, (set(options) | flags) - parameters
    assert "in-process" in flags  # no LoopService is deployed: the Job runs the loop itself
    for option in ("ingest", "scorer", "sampler", "trainer"):
        host, port = options[option].split(":")
        ports = [
            p["port"] for d in k8s_objects() for p in _service_ports(d) if _service_name(d) == host
        ]
        assert int(port) in ports, f"--{option}={options[option]} is not a Service port"
    assert {e["name"] for e in spec["env"]} <= known_env("loop")


def k8s_object_generated(kind: str) -> dict:
    (found,) = [d for d in k8s_objects() if d["kind"] == kind and "generateName" in d["metadata"]]
    return found


def _service_name(document: dict) -> str | None:
    if document["kind"] == "Service":
        return document["metadata"]["name"]
    if document["kind"] == "RayService":
        return document["spec"]["serveService"]["metadata"]["name"]
    return None


def _service_ports(document: dict) -> list[dict]:
    if document["kind"] == "Service":
        return document["spec"]["ports"]
    if document["kind"] == "RayService":
        return document["spec"]["serveService"]["spec"]["ports"]
    return []
