"""What the infra/ files must agree with, read from the code itself: the services, their
settings (environment variables AUTOPERI_<SERVICE>_<FIELD>), the storage variables, the
Makefile's source roots. Shared by the Dockerfile, compose and Kubernetes tests."""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from pathlib import Path

from storage import _factory, _lakefs_store, _s3_store

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"


@dataclass(frozen=True)
class Service:
    """A service: its package, settings class (None: a command, not a server) and port."""

    name: str
    package: str
    settings: str | None
    port: int | None

    def settings_class(self):
        return getattr(importlib.import_module(self.package), self.settings)

    def env_names(self) -> set[str]:
        """The environment variables its settings read (AUTOPERI_<SERVICE>_<FIELD>)."""
        if self.settings is None:
            return set()
        cls = self.settings_class()
        prefix = cls.model_config["env_prefix"]
        return {f"{prefix}{field}".upper() for field in cls.model_fields}


SERVICES = {
    s.name: s
    for s in (
        Service("ingest", "ingest_svc", "IngestSettings", 50061),
        Service("featurestore", "featurestore_svc", "FeatureStoreSettings", 50062),
        Service("scorer", "scorer_svc", "ScorerSettings", 50063),
        Service("sampler", "sampler_svc", "SamplerSettings", 50064),
        Service("trainer", "trainer_svc", "TrainerSettings", 50065),
        Service("loop", "loop_svc", None, None),
    )
}

#: Variables the storage factory reads (S3/MinIO and lakeFS endpoints and credentials).
STORAGE_ENV = {
    _factory.S3_ENDPOINT_ENV,
    *_s3_store.ACCESS_KEY_ENVS,
    *_s3_store.SECRET_KEY_ENVS,
    _lakefs_store.ENDPOINT_ENV,
    _lakefs_store.ACCESS_KEY_ENV,
    _lakefs_store.SECRET_KEY_ENV,
    _lakefs_store.NAMESPACE_ENV,
}
#: Ray's own variables that the manifests set (token authentication, usage statistics).
RAY_ENV = {"RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_USAGE_STATS_ENABLED"}
#: Read by the dataset loaders (the loop's held-out and seed files).
DATA_ENV = {"AUTOPERI_DATA_DIR"}


def known_env(service: str) -> set[str]:
    """Every variable a container of `service` may be given: something the code reads."""
    return SERVICES[service].env_names() | STORAGE_ENV | RAY_ENV | DATA_ENV


def makefile_source_roots() -> list[str]:
    """SOURCE_ROOTS of the Makefile (what `make setup` puts on sys.path)."""
    text = (REPO / "Makefile").read_text().replace("\\\n", " ")
    match = re.search(r"^SOURCE_ROOTS\s*:=\s*(.+)$", text, re.MULTILINE)
    assert match, "the Makefile has no SOURCE_ROOTS"
    return match.group(1).split()


def locked_version(package: str) -> str:
    """The version requirements.lock pins for `package`."""
    for line in (REPO / "requirements.lock").read_text().splitlines():
        name, _, version = line.partition("==")
        if name.strip().lower() == package.lower():
            return version.strip()
    raise AssertionError(f"{package} is not in requirements.lock")


def dockerignore_excludes(patterns: list[str], path: str) -> bool:
    """Whether a .dockerignore with `patterns` leaves `path` (relative, '/'-separated) out of the
    build context: the last matching pattern wins; a pattern matching a parent folder matches
    the path; '!' re-includes; '**' spans folders."""
    excluded = False
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = raw[1:] if negate else raw
        regex = _glob_regex(pattern.strip("/"))
        if any(regex.fullmatch(c) for c in candidates):
            excluded = not negate
    return excluded


def _glob_regex(pattern: str) -> re.Pattern:
    """A .dockerignore pattern as a regex: '*' and '?' stay inside a folder, '**' spans them."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] in "*?":
            out, i = out + ("[^/]*" if pattern[i] == "*" else "[^/]"), i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def read_dockerignore(path: Path) -> list[str]:
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


K8S = INFRA / "k8s"


def k8s_documents(name: str) -> list[dict]:
    """The objects of one manifest file under infra/k8s."""
    import yaml

    return [d for d in yaml.safe_load_all((K8S / name).read_text()) if d]


def k8s_manifests() -> dict[str, list[dict]]:
    """Every manifest file: the kustomization's resources and the on-demand loop Job."""
    import yaml

    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    names = [*kustomization["resources"], "loop-job.yaml"]
    return {name: k8s_documents(name) for name in names}


def k8s_objects() -> list[dict]:
    return [d for docs in k8s_manifests().values() for d in docs]


def k8s_object(kind: str, name: str) -> dict:
    found = [d for d in k8s_objects() if d["kind"] == kind and d["metadata"].get("name") == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} objects"
    return found[0]
