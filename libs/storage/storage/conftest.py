"""Fixtures for the storage contract suite: every backend behind one parametrised fixture.

S3 runs against a real moto server on localhost (one per test session). moto 5.2.5 evaluates
S3 conditional writes (If-Match / If-None-Match) but checks and writes without a lock, so racing
conditional writes can both succeed there; the fixture serialises moto's requests, which gives
the atomic conditional writes that AWS S3 and MinIO provide. lakeFS runs only when LAKEFS_* is set.
"""

import hashlib
import json
import logging
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from storage import LocalObjectStore, LocalVersionStore, ObjectStore, VersionStore

MOTO_BUCKET = "autoperi-test"
MOTO_CREDENTIALS = {"AUTOPERI_S3_ACCESS_KEY": "testing", "AUTOPERI_S3_SECRET_KEY": "testing"}
LAKEFS_ENVS = ("LAKEFS_ENDPOINT", "LAKEFS_ACCESS_KEY_ID", "LAKEFS_SECRET_ACCESS_KEY")


class _Serialised:
    """WSGI middleware running one request at a time (atomic check-and-write, as on real S3)."""

    def __init__(self, app) -> None:
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self.lock:
            return list(self.app(environ, start_response))


def _start_moto() -> tuple[object, str]:
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from moto.server import ThreadedMotoServer
    from werkzeug.serving import make_server

    class SerialisedMotoServer(ThreadedMotoServer):
        def _server_entry(self) -> None:
            app = _Serialised(DomainDispatcherApplication(create_backend_app))
            self._server = make_server(
                self._ip_address, self._port, app, True, request_handler=MotoRequestHandler
            )
            self._server_ready_event.set()
            self._server.serve_forever()

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = SerialisedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, f"{host}:{port}"


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """'127.0.0.1:PORT' of an in-process moto S3 server with the test bucket created."""
    pytest.importorskip("moto.server", reason="moto[server] is not installed")
    server, endpoint = _start_moto()
    connect_s3(endpoint, "").ensure_bucket()
    yield endpoint
    server.stop()


def connect_s3(endpoint: str, prefix: str) -> ObjectStore:
    """The moto test bucket under `prefix` (moto accepts any credentials)."""
    from storage import S3ObjectStore

    return S3ObjectStore.connect(
        endpoint,
        MOTO_BUCKET,
        prefix,
        secure=False,
        access_key=MOTO_CREDENTIALS["AUTOPERI_S3_ACCESS_KEY"],
        secret_key=MOTO_CREDENTIALS["AUTOPERI_S3_SECRET_KEY"],
    )


def s3_uri(endpoint: str, prefix: str) -> str:
    """The s3:// URI of `prefix` in the test bucket on the moto server."""
    return f"s3://{MOTO_BUCKET}/{prefix}?endpoint={endpoint}&secure=false"


@pytest.fixture(params=["local", "s3"])
def object_store(request, tmp_path) -> ObjectStore:
    """A fresh, empty object store of each backend."""
    if request.param == "local":
        return LocalObjectStore(tmp_path / "objects")
    return request.getfixturevalue("object_store_s3")


@dataclass
class VersionCase:
    """A version store under test: write keys under `prefix` on branch `branch` of `repo`."""

    store: VersionStore
    repo: str
    branch: str
    prefix: str
    embedded: bool


def _lakefs_case() -> Iterator[VersionCase]:
    missing = [k for k in (*LAKEFS_ENVS, "LAKEFS_REPOSITORY") if not os.environ.get(k)]
    if missing:
        pytest.skip(f"lakeFS contract tests need a lakeFS server: set {', '.join(missing)}")
    from storage import LakeFSVersionStore

    store = LakeFSVersionStore.connect()
    repo = os.environ["LAKEFS_REPOSITORY"]
    branch = f"t-{uuid.uuid4().hex[:16]}"
    store.create_branch(repo, branch, store.default_branch(repo))
    yield VersionCase(store, repo, branch, f"{branch}/", embedded=False)
    for name in store.list_branches(repo):
        if name.startswith(branch):
            store.delete_branch(repo, name)


@pytest.fixture(params=["local", "s3", "lakefs"])
def version_case(request, tmp_path) -> Iterator[VersionCase]:
    """A repository with a fresh working branch, on each version-store backend."""
    if request.param == "lakefs":
        yield from _lakefs_case()
        return
    if request.param == "local":
        objects: ObjectStore = LocalObjectStore(tmp_path / "objects")
    else:
        objects = request.getfixturevalue("object_store_s3")
    store = LocalVersionStore(objects)
    store.create_repository("datasets")
    yield VersionCase(store, "datasets", "main", "", embedded=True)


@pytest.fixture
def object_store_s3(moto_endpoint) -> ObjectStore:
    """A fresh prefix of the moto bucket."""
    return connect_s3(moto_endpoint, f"t-{uuid.uuid4().hex}")


def verify_closure(objects: ObjectStore, root: str, repo: str, commit_id: str) -> dict:
    """Check, from raw stored bytes and independently of the store's code, that a commit and
    everything it references exist and hash to their ids; return its tree {key: [sha, size]}."""
    base = f"{root}/repos/{repo}"
    record_bytes = objects.get_bytes(f"{base}/commits/{commit_id}")
    assert hashlib.sha256(record_bytes).hexdigest() == commit_id
    record = json.loads(record_bytes)
    tree_bytes = objects.get_bytes(f"{base}/trees/{record['tree']}")
    assert hashlib.sha256(tree_bytes).hexdigest() == record["tree"]
    entries = json.loads(tree_bytes)["entries"]
    for sha, size in entries.values():
        data = objects.get_bytes(f"blobs/sha256/{sha[:2]}/{sha}")
        assert hashlib.sha256(data).hexdigest() == sha and len(data) == size
    return entries
