"""infra/compose/compose.yaml, checked without a Docker engine: the Compose Specification's JSON
schema (vendored by check-jsonschema), then the stack itself: pinned official MinIO and lakeFS
images, one service per Dockerfile target, settings the code reads and that validate, addresses
and dependencies that resolve, and the storage configuration run against a real S3 server."""

import copy
import re
import subprocess
import sys
from importlib.resources import files

import jsonschema
import pytest
import yaml
from infra_spec import INFRA, REPO, SERVICES, known_env, locked_version
from storage import open_object_store, open_version_store

COMPOSE = INFRA / "compose" / "compose.yaml"
_VARIABLE = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


def interpolate(value, env: dict[str, str] | None = None):
    """Compose's ${VAR} / ${VAR:-default} substitution over a loaded document."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if isinstance(value, str):
        return _VARIABLE.sub(lambda m: (env or {}).get(m.group(1), m.group(2) or ""), value)
    return value


def load(env: dict[str, str] | None = None) -> dict:
    return interpolate(yaml.safe_load(COMPOSE.read_text()), env)


def compose_schema_errors(document: dict) -> list[str]:
    import json

    path = files("check_jsonschema") / "builtin_schemas" / "vendor" / "compose-spec.json"
    schema = json.loads(path.read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(document)]


def test_compose_file_matches_the_compose_specification():
    document = load()
    assert compose_schema_errors(document) == []
    broken = copy.deepcopy(document)
    broken["services"]["ingest"]["depend_on"] = broken["services"]["ingest"].pop("depends_on")
    broken["services"]["sampler"]["ports"] = "50064"
    errors = compose_schema_errors(broken)
    assert any("depend_on" in e for e in errors) and any("ports" in e for e in errors)


def test_minio_and_lakefs_are_official_images_at_pinned_releases():
    services = load()["services"]
    minio, lakefs = services["minio"]["image"], services["lakefs"]["image"]
    assert re.fullmatch(r"quay\.io/minio/minio:RELEASE\.\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ", minio)
    # The lakeFS server release whose OpenAPI the pinned lakefs-sdk client was generated from.
    assert lakefs == f"treeverse/lakefs:{locked_version('lakefs-sdk')}"
    for name in ("minio", "lakefs"):
        assert services[name]["healthcheck"]["test"][0] == "CMD"


def test_each_service_is_built_from_its_dockerfile_target_with_settings_the_code_reads():
    services = load()["services"]
    for name, service in SERVICES.items():
        spec = services[name]
        build = spec["build"]
        assert (COMPOSE.parent / build["context"]).resolve() == REPO
        assert (REPO / build["dockerfile"]).is_file() and build["target"] == name
        assert spec["image"] == f"autoperi/{name}:0.1.0"
        env = spec.get("environment", {})
        unknown = set(env) - known_env(name)
        assert not unknown, f"{name}: variables no code reads: {unknown}"
        if service.settings is not None:
            own = {k: v for k, v in env.items() if k in service.env_names()}
            service.settings_class().model_validate(
                {k.removeprefix(f"AUTOPERI_{name.upper()}_").lower(): v for k, v in own.items()}
            )
    # A stray variable is caught.
    assert "AUTOPERI_INGEST_STORAGE" not in known_env("ingest")


def dependencies(services: dict, name: str) -> set[str]:
    """Every service `name` waits for, directly or through others."""
    direct = set(services[name].get("depends_on", {}))
    return direct.union(*(dependencies(services, d) for d in direct))


def test_ports_addresses_and_dependencies_resolve():
    services = load()["services"]
    published = {}
    for name, spec in services.items():
        for mapping in spec.get("ports", []):
            host_ip, host_port, _ = mapping.split(":")
            assert host_ip == "127.0.0.1", f"{name} publishes {mapping} beyond this host"
            assert host_port not in published, f"host port {host_port} published twice"
            published[host_port] = name
        for dependency, condition in spec.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            if condition["condition"] == "service_healthy":  # compose's check or the image's
                assert "healthcheck" in services[dependency] or dependency in SERVICES
        assert name not in dependencies(services, name), f"{name} depends on itself"
    for name, service in SERVICES.items():
        if service.port is not None:
            assert published[str(service.port)] == name
    # Every host:port a service is given (endpoints, addresses) is a service of the stack that
    # serves that port and that it waits for.
    ports = {name: s.port for name, s in SERVICES.items()} | {"minio": 9000, "lakefs": 8000}
    found = 0
    for name, spec in services.items():
        values = [*spec.get("environment", {}).values(), *spec.get("command", [])]
        for value in map(str, values):
            for host, port in re.findall(r"(?:^|[=/])([a-z]+):(\d{4,5})\b", value):
                found += 1
                assert ports.get(host) == int(port), f"{name}: {host}:{port} is not served"
                assert host in dependencies(services, name), f"{name} does not wait for {host}"
    assert found >= 8


@pytest.fixture(scope="module")
def s3_endpoint():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"{host}:{port}"
    server.stop()


def test_bucket_command_and_storage_uris_work_against_a_real_s3_server(s3_endpoint):
    services = load()["services"]
    buckets = services["buckets"]
    env = {**buckets["environment"], "AUTOPERI_S3_ENDPOINT": s3_endpoint}
    # The compose command itself, run here with the compose environment (endpoint: moto's).
    run = subprocess.run(
        [sys.executable, *buckets["command"][1:]],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    namespace = services["lakefs"]["environment"]
    lakefs_bucket = services["ingest"]["environment"]["LAKEFS_STORAGE_NAMESPACE"].split("/")[2]
    assert lakefs_bucket in buckets["command"][2] and namespace["LAKEFS_BLOCKSTORE_TYPE"] == "s3"
    assert (
        namespace["LAKEFS_BLOCKSTORE_S3_CREDENTIALS_ACCESS_KEY_ID"]
        == env["AUTOPERI_S3_ACCESS_KEY"]
        == services["minio"]["environment"]["MINIO_ROOT_USER"]
    )
    uri = services["featurestore"]["environment"]["AUTOPERI_FEATURESTORE_STORAGE_URI"]
    assert uri == services["trainer"]["environment"]["AUTOPERI_TRAINER_STORAGE_URI"]
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        store = open_object_store(uri)
        digest = store.put_blob(b"a shard")
        assert open_object_store(uri).get_blob(digest) == b"a shard"
        patch.setenv("LAKEFS_ENDPOINT", services["ingest"]["environment"]["LAKEFS_ENDPOINT"])
        versions = open_version_store(
            services["ingest"]["environment"]["AUTOPERI_INGEST_STORAGE_URI"]
        )
        assert versions.describe() == "lakeFS at http://lakefs:8000/api/v1"
