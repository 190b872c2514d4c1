"""Object storage and dataset versioning for AutoPeri.

Two interfaces, each with an embedded default that needs no server:
- `ObjectStore` (key -> bytes, streaming files, content-addressed blobs, compare-and-swap):
  `LocalObjectStore` (a directory) and `S3ObjectStore` (S3/MinIO via `minio`);
- `VersionStore` (repositories, branches, commits, diff, merge, reads by commit id):
  `LocalVersionStore` (on any ObjectStore) and `LakeFSVersionStore` (lakeFS via its SDK).
`open_object_store` / `open_version_store` build them from URIs. S3ObjectStore and
LakeFSVersionStore are imported on first use, so their client libraries load only when needed.
`GRPC_STATUS` maps each storage error to the gRPC status name a service should answer with.
"""

from storage._embedded import LocalVersionStore
from storage._errors import (
    BranchExists,
    CorruptObject,
    HeadMoved,
    InvalidKey,
    MergeConflict,
    ObjectNotFound,
    PreconditionFailed,
    RefNotFound,
    RepositoryExists,
    RepositoryNotFound,
    StorageError,
)
from storage._factory import open_object_store, open_version_store, redact_uri
from storage._keys import blob_key, check_key, check_ref_name, check_repo_name, sha256_bytes
from storage._local_store import LocalObjectStore
from storage._object_store import ObjectInfo, ObjectStore
from storage._status import GRPC_STATUS
from storage._versioning import Change, Commit, MergeResult, TreeEntry, VersionStore

_LAZY = {
    "S3ObjectStore": "storage._s3_store",
    "LakeFSVersionStore": "storage._lakefs_store",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'storage' has no attribute {name!r}")


__all__ = [
    "GRPC_STATUS",
    "BranchExists",
    "Change",
    "Commit",
    "CorruptObject",
    "HeadMoved",
    "InvalidKey",
    "LakeFSVersionStore",
    "LocalObjectStore",
    "LocalVersionStore",
    "MergeConflict",
    "MergeResult",
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectStore",
    "PreconditionFailed",
    "RefNotFound",
    "RepositoryExists",
    "RepositoryNotFound",
    "S3ObjectStore",
    "StorageError",
    "TreeEntry",
    "VersionStore",
    "blob_key",
    "check_key",
    "check_ref_name",
    "check_repo_name",
    "open_object_store",
    "open_version_store",
    "redact_uri",
    "sha256_bytes",
]
