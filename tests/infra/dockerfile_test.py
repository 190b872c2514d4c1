"""infra/docker/Dockerfile, checked without a Docker engine: the official BuildKit parser reads
it, hadolint lints it, and every target, command, COPY source, setting and health check is
checked against the repository. A real server answers the health-check script."""

import re
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import dockerfile
from infra_spec import (
    INFRA,
    REPO,
    SERVICES,
    dockerignore_excludes,
    known_env,
    locked_version,
    makefile_source_roots,
    read_dockerignore,
)

DOCKERFILE = INFRA / "docker" / "Dockerfile"
HADOLINT = Path(sys.executable).with_name("hadolint")
HEALTHCHECK = INFRA / "docker" / "healthcheck.py"


def stages(path: Path = DOCKERFILE) -> dict[str, list]:
    """Target name -> its instructions (FROM first), as BuildKit's parser reads them."""
    result: dict[str, list] = {}
    current = None
    for command in dockerfile.parse_file(str(path)):
        if command.cmd == "FROM":
            value = command.value
            assert len(value) == 3 and value[1].upper() == "AS", f"unnamed stage: {value}"
            current = result.setdefault(value[2], [])
        if current is not None:
            current.append(command)
    return result


def instructions(stage: list, cmd: str) -> list:
    return [c for c in stage if c.cmd == cmd]


def env_of(stage: list) -> dict[str, str]:
    env: dict[str, str] = {}
    for command in instructions(stage, "ENV"):
        values = command.value
        env.update(zip(values[::2], values[1::2], strict=True))
    return env


def test_hadolint_passes_and_catches_a_root_image_on_latest(tmp_path):
    run = subprocess.run([HADOLINT, "--no-color", DOCKERFILE], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    bad = tmp_path / "Dockerfile"
    text = DOCKERFILE.read_text().replace("FROM ${PYTHON_IMAGE} AS", "FROM python:latest AS")
    bad.write_text(text + "USER root\n")
    run = subprocess.run([HADOLINT, "--no-color", bad], capture_output=True, text=True)
    assert run.returncode != 0 and "DL3007" in run.stdout and "DL3002" in run.stdout


def test_one_target_per_service_each_built_on_base():
    found = stages()
    assert set(found) == {"base", *SERVICES}
    for name in SERVICES:
        assert found[name][0].value[0] == "base", f"{name} is not built FROM base"


def test_base_image_is_pinned_and_torch_is_the_locked_cpu_build():
    base = stages()["base"]
    image = next(
        c.value[0].partition("=")[2]
        for c in dockerfile.parse_file(str(DOCKERFILE))
        if c.cmd == "ARG" and c.value[0].startswith("PYTHON_IMAGE=")
    )
    assert base[0].value[0] == "${PYTHON_IMAGE}"
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", image), image
    run = " ".join(" ".join(c.value) for c in instructions(base, "RUN"))
    torch = locked_version("torch")
    assert torch.startswith("2.13.0") and f"torch=={torch.split('+')[0]}" in run
    assert "-r requirements.lock" in run and "-c constraints.txt" in run


def test_copied_sources_exist_in_the_build_context():
    patterns = read_dockerignore(INFRA / "docker" / "Dockerfile.dockerignore")
    copies = [c for c in dockerfile.parse_file(str(DOCKERFILE)) if c.cmd == "COPY"]
    sources = [s for c in copies for s in c.value[:-1]]
    assert sources
    for source in sources:
        assert (REPO / source).exists(), f"COPY {source}: no such path"
        assert not dockerignore_excludes(patterns, source), f"{source} is left out by .dockerignore"
    assert dockerignore_excludes(patterns, ".venv/bin/python")
    assert dockerignore_excludes(patterns, "libs/xtal/xtal/crystal_test.py")
    # Every source root of `make setup` is copied and put on the image's path.
    write_pth = next(
        " ".join(c.value)
        for c in instructions(stages()["base"], "RUN")
        if "write_pth" in c.value[0]
    )
    for root in makefile_source_roots():
        top = root.split("/")[0]
        assert root == "build/gen/python" or top in sources, f"{root} is not copied"
        assert root in write_pth or f"{top}/*/" in write_pth, f"{root} is not on the path"


def test_each_service_runs_its_own_main_as_a_non_root_user():
    found = stages()
    users = [c.value[0] for c in instructions(found["base"], "USER")]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    for name, service in SERVICES.items():
        stage = found[name]
        assert not instructions(stage, "USER"), f"{name} changes the user"
        command = instructions(stage, "ENTRYPOINT" if service.settings is None else "CMD")[-1]
        assert command.json, f"{name}: exec form expected"
        assert command.value[:2] == ("python", "-m"), command.value
        module = command.value[2]
        assert module == f"{service.package}.main" and find_spec(module) is not None, module
        assert callable(__import__(module, fromlist=["main"]).main)


def test_servers_set_real_settings_and_are_health_checked_on_their_port():
    found = stages()
    for name, service in SERVICES.items():
        stage, env = found[name], env_of(found[name])
        unknown = {k for k in env if k.startswith(("AUTOPERI_", "LAKEFS_"))} - known_env(name)
        assert not unknown, f"{name}: ENV the code does not read: {unknown}"
        checks = instructions(stage, "HEALTHCHECK")
        assert len(checks) == 1, f"{name}: one HEALTHCHECK expected"
        if service.settings is None:
            assert checks[0].value == ("NONE",)
            continue
        port_var = f"AUTOPERI_{name.upper()}_PORT"
        assert port_var in service.env_names()
        assert env[port_var] == str(service.port)
        assert [c.value[0] for c in instructions(stage, "EXPOSE")] == [str(service.port)]
        probe = checks[0].value
        assert probe[:3] == ("CMD", "python", "/app/infra/docker/healthcheck.py"), probe
        assert probe[3:5] == ("--port-env", port_var), probe
        flags = dict(f.lstrip("-").split("=", 1) for f in checks[0].flags)
        assert {"interval", "timeout", "start-period", "retries"} <= set(flags)


def test_health_check_script_reports_a_real_server(tmp_path):
    from ingest_svc import IngestSettings, create_server
    from ingest_svc._server import IngestDeps
    from ingest_svc.testing import serving

    settings = IngestSettings(host="127.0.0.1", port=0, log_json=False, storage_uri=str(tmp_path))
    deps = IngestDeps.from_settings(settings)

    def probe(*args, **env):
        return subprocess.run(
            [sys.executable, HEALTHCHECK, *args],
            capture_output=True,
            text=True,
            timeout=60,
            env={"PATH": "/usr/bin:/bin", **env},
        )

    with serving(lambda: create_server(settings, deps)) as server:
        port = str(server.port)
        ok = probe("--port-env", "AUTOPERI_INGEST_PORT", AUTOPERI_INGEST_PORT=port)
        named = probe(server.address, "--service", "autoperi.ingest.v1.IngestService")
        unknown = probe(server.address, "--service", "no.such.Service")
    assert ok.returncode == 0 and "SERVING" in ok.stdout, ok.stdout + ok.stderr
    assert named.returncode == 0, named.stdout + named.stderr
    assert unknown.returncode == 1 and "NOT_FOUND" in unknown.stdout
    gone = probe("--port-env", "AUTOPERI_INGEST_PORT", AUTOPERI_INGEST_PORT=port)
    assert gone.returncode == 1 and "UNAVAILABLE" in gone.stdout
    assert probe("--port-env", "AUTOPERI_INGEST_PORT").returncode == 2  # unset: usage error


def test_health_check_script_dials_tls_with_the_client_variables(tmp_path):
    """A server with TLS, client certificates and tokens: the probe needs the CA and the client
    certificate (AUTOPERI_TLS_*), no token."""
    from ingest_svc import IngestSettings, create_server
    from ingest_svc._server import IngestDeps
    from ingest_svc.testing import serving
    from svc_kit.testing import make_tls_files

    tls = make_tls_files(tmp_path / "tls")
    settings = IngestSettings(
        host="127.0.0.1",
        port=0,
        log_json=False,
        storage_uri=str(tmp_path / "data"),
        tls_cert_file=tls.server_cert,
        tls_key_file=tls.server_key,
        tls_client_ca_file=tls.ca_cert,
        auth_tokens_file=tls.tokens,
    )
    client = {
        "AUTOPERI_TLS_CA_FILE": str(tls.ca_cert),
        "AUTOPERI_TLS_CLIENT_CERT_FILE": str(tls.client_cert),
        "AUTOPERI_TLS_CLIENT_KEY_FILE": str(tls.client_key),
    }

    def probe(address: str, **env) -> subprocess.CompletedProcess:
        command = [sys.executable, HEALTHCHECK, address]
        env = {"PATH": "/usr/bin:/bin", **env}
        return subprocess.run(command, capture_output=True, text=True, timeout=60, env=env)

    deps = IngestDeps.from_settings(settings)
    with serving(lambda: create_server(settings, deps)) as server:
        ok = probe(server.address, **client)
        plaintext = probe(server.address)
        no_cert = probe(server.address, AUTOPERI_TLS_CA_FILE=str(tls.ca_cert))
    assert ok.returncode == 0 and "SERVING" in ok.stdout, ok.stdout + ok.stderr
    assert plaintext.returncode == 1 and "UNAVAILABLE" in plaintext.stdout
    assert no_cert.returncode == 1 and "UNAVAILABLE" in no_cert.stdout
