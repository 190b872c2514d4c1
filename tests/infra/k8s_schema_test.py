"""infra/k8s by schema, as no cluster runs here: Kubernetes kinds with kubernetes-validate
(strict, Kubernetes 1.33), KubeRay's RayCluster and RayService with infra/k8s/schemas (their
pod templates, metadata and Service against Kubernetes' own definitions), the RayService's Serve
config with Ray Serve's own schema. Each check is shown to fail on a broken copy."""

import copy
import json
from importlib.resources import files

import jsonschema
import kubernetes_validate
import pytest
import yaml
from infra_spec import K8S, k8s_manifests, k8s_object, k8s_objects
from ray.serve.schema import ServeDeploySchema
from referencing import Registry, Resource

K8S_VERSION = "1.33.0"
KUBERAY_KINDS = ("RayCluster", "RayService")


def kubernetes_errors(document: dict) -> list[str]:
    try:
        kubernetes_validate.validate(document, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [f"{'.'.join(map(str, exc.path))}: {exc.message}"]
    return []


def kuberay_errors(document: dict) -> list[str]:
    schema = json.loads((K8S / "schemas" / "kuberay-v1.schema.json").read_text())
    folder = f"v{K8S_VERSION}-local-strict"
    definitions = files("kubernetes_validate") / "kubernetes-json-schema" / folder
    defs = json.loads((definitions / "_definitions.json").read_text())
    registry = Registry().with_resource(defs["$id"], Resource.from_contents(defs))
    if document.get("kind") in KUBERAY_KINDS:  # the kind's own definition: clearer errors
        schema = {k: v for k, v in schema.items() if k != "oneOf"}
        schema["$ref"] = f"#/$defs/{document['kind']}"
    validator = jsonschema.Draft202012Validator(schema, registry=registry)
    return [f"{'.'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(document)]


def test_every_manifest_file_is_listed_and_every_object_is_named():
    listed = set(k8s_manifests())
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk
    for document in k8s_objects():
        meta = document["metadata"]
        assert meta.get("name") or meta.get("generateName"), document["kind"]


@pytest.mark.parametrize(
    "document",
    [d for d in k8s_objects() if d["kind"] not in KUBERAY_KINDS],
    ids=lambda d: f"{d['kind']}/{d['metadata'].get('name', d['metadata'].get('generateName'))}",
)
def test_kubernetes_objects_pass_the_kubernetes_schema(document):
    assert kubernetes_errors(document) == []


def test_the_kubernetes_schema_catches_broken_objects():
    deployment = copy.deepcopy(k8s_object("Deployment", "autoperi-ingest"))
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["readinessProbe"]["grpc"]["port"] = "grpc"  # gRPC probes take a number
    assert kubernetes_errors(deployment)
    deployment = copy.deepcopy(k8s_object("Deployment", "autoperi-ingest"))
    deployment["spec"]["replica"] = 2
    assert kubernetes_errors(deployment)


@pytest.mark.parametrize("kind", KUBERAY_KINDS)
def test_kuberay_objects_pass_their_schema(kind):
    (document,) = [d for d in k8s_objects() if d["kind"] == kind]
    assert kuberay_errors(document) == []


def test_the_kuberay_schema_catches_broken_objects():
    cluster = k8s_object("RayCluster", "autoperi-train")
    broken = copy.deepcopy(cluster)
    broken["spec"]["workerGroupSpecs"][0]["rayStartParams"]["num-cpus"] = 2  # must be a string
    assert any("num-cpus" in e for e in kuberay_errors(broken))
    broken = copy.deepcopy(cluster)
    broken["spec"]["workerGroupSpec"] = broken["spec"].pop("workerGroupSpecs")
    assert kuberay_errors(broken)
    broken = copy.deepcopy(cluster)  # the pod template is checked by Kubernetes' schema
    pod = broken["spec"]["headGroupSpec"]["template"]["spec"]
    pod["containers"][0]["resources"]["limits"]["cpus"] = {"n": 2}
    assert kuberay_errors(broken)
    service = copy.deepcopy(k8s_object("RayService", "autoperi-sampler"))
    service["spec"]["serveService"]["spec"]["ports"][0]["port"] = "50064"
    assert kuberay_errors(service)


def serve_config() -> dict:
    service = k8s_object("RayService", "autoperi-sampler")
    return yaml.safe_load(service["spec"]["serveConfigV2"])


def test_the_sampler_serve_config_passes_ray_serves_schema():
    config = ServeDeploySchema.model_validate(serve_config())
    assert [app.name for app in config.applications] == ["sampler"]
    broken = serve_config()
    broken["grpc_options"]["port"] = "nine thousand"
    del broken["applications"][0]["import_path"]
    with pytest.raises(ValueError, match=r"(?s)grpc_options.port.*import_path"):
        ServeDeploySchema.model_validate(broken)
