"""FeatureStoreCore: builds each feature unit of a (dataset commit, config) once, and reports it.

Once per key, in two layers. In a process, concurrent requests for one unit share one Future
(single flight). Across processes, a builder first takes a lease object
`features/locks/<unit id>` with the store's compare-and-swap; others wait for the unit's manifest
`features/manifests/<unit id>.json` (the READY marker, written last) or take over an expired lease.
"""

import hashlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autoperi_data import commit_crystals
from storage import (
    ObjectNotFound,
    ObjectStore,
    PreconditionFailed,
    RefNotFound,
    RepositoryNotFound,
    VersionStore,
)
from svc_kit import NotFound, public_text
from xtal import Crystal

from featurestore_svc._build import (
    FINGERPRINT_KINDS,
    POTENTIAL_KINDS,
    TENSOR_KINDS,
    build_fingerprints,
    build_reference_energies,
    build_tensors,
)
from featurestore_svc._config import ResolvedConfig, check_ref, repo_name

log = logging.getLogger("featurestore_svc.core")
UNSUPPORTED = {
    "embeddings": "embeddings need the scorer's potential, not built here yet",
}


@dataclass(frozen=True)
class FeatureRequest:
    """What to build: a dataset commit, a featuriser config and feature kinds (names)."""

    dataset: str
    commit: str
    config: ResolvedConfig
    kinds: tuple[str, ...]


@dataclass(frozen=True)
class ArtifactState:
    """Where one kind stands: state is missing, queued, running, ready or failed."""

    kind: str
    state: str
    artifact_id: str
    shards: Sequence[dict[str, Any]] = ()
    finished: float = 0.0
    error: tuple[str, str] | None = None  # (code, message)


@dataclass(frozen=True)
class FeatureSetState:
    """The requested kinds' states, in request order, and the statistics when ready."""

    request: FeatureRequest
    artifacts: tuple[ArtifactState, ...]
    statistics: dict[str, Any] | None = field(default=None)


class FeatureStoreCore:
    """Cached features of dataset versions in an object store; see the module notes."""

    def __init__(
        self,
        objects: ObjectStore,
        versions: VersionStore,
        max_builds: int = 1,
        lease_s: float = 1800.0,
        poll_s: float = 0.5,
        energy_cache_dir: Path | None = None,
    ) -> None:
        self.objects, self.versions = objects, versions
        self.energy_cache_dir = energy_cache_dir  # reference energies' disk cache (None: memory)
        self.lease_s, self.poll_s = lease_s, poll_s
        self.builds_started = 0  # units this process actually built (not served from the store)
        self._lock = threading.Lock()
        self._inflight: dict[str, Future] = {}
        self._failed: dict[str, tuple[str, str]] = {}
        self._executor = ThreadPoolExecutor(max_builds, "featurestore-build")

    def close(self) -> None:
        """Stop accepting builds (running ones finish)."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    def resolve(self, dataset: str, ref: str) -> str:
        """The commit id of `ref` (default branch when empty) in `dataset`; InvalidInput for a
        name or ref that is not one (a path, a URI), NotFound for an unknown one."""
        repo, ref = repo_name(dataset), check_ref(ref)
        try:
            return self.versions.resolve(repo, ref or self.versions.default_branch(repo))
        except (RefNotFound, RepositoryNotFound):
            raise NotFound(f"no dataset {dataset!r} or ref {ref!r} in it") from None

    # -- building -------------------------------------------------------------------------------

    def ensure(self, request: FeatureRequest) -> list[Future]:
        """Start (or join) the builds the request needs; Futures resolve to unit manifests."""
        futures = []
        for unit in _units(request):
            uid = self.unit_id(request, unit)
            with self._lock:
                future = self._inflight.get(uid)
                if future is None:
                    self._failed.pop(uid, None)
                    future = self._executor.submit(self._run, request, unit, uid)
                    self._inflight[uid] = future
                    future.add_done_callback(lambda f, uid=uid: self._finished(uid, f))
            futures.append(future)
        return futures

    def _finished(self, uid: str, future: Future) -> None:
        with self._lock:
            self._inflight.pop(uid, None)
            if not future.cancelled() and future.exception() is not None:
                exc = future.exception()
                reason = f"{type(exc).__name__}: {public_text(str(exc))}".rstrip(": ")
                self._failed[uid] = ("build_failed", reason)

    def _run(self, request: FeatureRequest, unit: str, uid: str) -> dict[str, Any]:
        while (manifest := self.manifest(uid)) is None and not self._acquire(uid):
            time.sleep(self.poll_s)  # another process builds it
        if manifest is not None:
            return manifest
        try:
            if (manifest := self.manifest(uid)) is not None:
                return manifest
            with self._lock:
                self.builds_started += 1
            started = time.perf_counter()
            crystals = self._read_crystals(request)
            if unit == "tensors":
                manifest = build_tensors(crystals, request.config, self.objects)
            elif unit == "potential":
                source = f"{request.dataset}@{request.commit}"
                manifest = build_reference_energies(
                    crystals, source, self.objects, self.energy_cache_dir
                )
            else:
                manifest = build_fingerprints(crystals, self.objects)
            self.objects.put_bytes(_manifest_key(uid), json.dumps(manifest).encode())
            log.info("built %s of %s in %.1fs", unit, request.commit[:12],
                     time.perf_counter() - started)  # fmt: skip
            return manifest
        finally:
            self.objects.delete(_lock_key(uid))

    def _acquire(self, uid: str) -> bool:
        """Take the store-level lease of a unit (or an expired one); False if someone holds it."""
        lease = json.dumps({"owner": uuid.uuid4().hex, "expires": time.time() + self.lease_s})
        try:
            self.objects.compare_and_swap(_lock_key(uid), lease.encode(), None)
            return True
        except PreconditionFailed:
            pass
        try:
            data, etag = self.objects.get_versioned(_lock_key(uid))
        except ObjectNotFound:
            return False  # released meanwhile: try again
        if json.loads(data)["expires"] > time.time():
            return False
        try:
            self.objects.compare_and_swap(_lock_key(uid), lease.encode(), etag)
            return True
        except PreconditionFailed:
            return False

    def _read_crystals(self, request: FeatureRequest) -> list[Crystal]:
        """The commit's crystals in the stable order of their content hashes."""
        return commit_crystals(self.versions, request.dataset, request.commit)

    # -- state ----------------------------------------------------------------------------------

    def state(self, request: FeatureRequest) -> FeatureSetState:
        """Where every requested kind stands now (never waits)."""
        units = {u: self._unit_state(request, u) for u in _units(request)}
        artifacts, statistics = [], None
        for kind in request.kinds:
            aid = artifact_id(request, kind)
            unit = _unit_of(kind)
            if kind in UNSUPPORTED:
                artifacts.append(
                    ArtifactState(kind, "failed", aid, error=("unimplemented", UNSUPPORTED[kind]))
                )
                continue
            if kind == "graphs" and request.config.config.cutoff is None:
                problem = ("invalid_config", "graphs need a cutoff in the featuriser parameters")
                artifacts.append(ArtifactState(kind, "failed", aid, error=problem))
                continue
            state, manifest, error = units[unit]
            if manifest is not None:
                artifacts.append(
                    ArtifactState(
                        kind, "ready", aid, manifest["artifacts"][kind], manifest["finished"]
                    )
                )
                statistics = manifest.get("statistics") or statistics
            else:
                artifacts.append(ArtifactState(kind, state, aid, error=error))
        return FeatureSetState(request, tuple(artifacts), statistics)

    def _unit_state(self, request: FeatureRequest, unit: str):
        uid = self.unit_id(request, unit)
        manifest = self.manifest(uid)
        if manifest is not None:
            return "ready", manifest, None
        with self._lock:
            future, failure = self._inflight.get(uid), self._failed.get(uid)
        if future is not None:
            return ("running" if future.running() else "queued"), None, None
        if failure is not None:
            return "failed", None, failure
        return ("running" if self.objects.exists(_lock_key(uid)) else "missing"), None, None

    def manifest(self, uid: str) -> dict[str, Any] | None:
        """The stored manifest of a unit, or None while it is not built."""
        try:
            return json.loads(self.objects.get_bytes(_manifest_key(uid)))
        except ObjectNotFound:
            return None

    @staticmethod
    def unit_id(request: FeatureRequest, unit: str) -> str:
        """Content address of a unit: sha256 of (commit, config hash, unit)."""
        config = request.config.config_hash if unit == "tensors" else ""
        return hashlib.sha256(f"{request.commit}\n{config}\n{unit}".encode()).hexdigest()


def artifact_id(request: FeatureRequest, kind: str) -> str:
    """Content address of an artifact: sha256 of (dataset commit, config hash, kind)."""
    text = f"{request.commit}\n{request.config.config_hash}\n{kind}"
    return hashlib.sha256(text.encode()).hexdigest()


_UNITS = {"tensors": TENSOR_KINDS, "fingerprints": FINGERPRINT_KINDS, "potential": POTENTIAL_KINDS}


def _unit_of(kind: str) -> str:
    return next((unit for unit, kinds in _UNITS.items() if kind in kinds), "")


def _units(request: FeatureRequest) -> list[str]:
    units = {_unit_of(k) for k in request.kinds if k not in UNSUPPORTED}
    if (
        "graphs" in request.kinds
        and request.config.config.cutoff is None
        and len(request.kinds) == 1
    ):
        units.discard("tensors")
    return sorted(u for u in units if u)


def _manifest_key(uid: str) -> str:
    return f"features/manifests/{uid}.json"


def _lock_key(uid: str) -> str:
    return f"features/locks/{uid}"
