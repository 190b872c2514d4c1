"""Open stores from URIs, the one place that reads storage settings from the environment.

  file:///abs/dir[?durable=false]  or  /abs/dir    LocalObjectStore (the embedded default;
                                                   durable=false skips fsync: kill-safe, not
                                                   power-loss-safe)
  s3://bucket[/prefix]?endpoint=host:port&secure=false&region=us-east-1&create=true
                                                   S3ObjectStore; credentials from
                                                   AUTOPERI_S3_ACCESS_KEY / AUTOPERI_S3_SECRET_KEY
                                                   (or AWS_*); endpoint also AUTOPERI_S3_ENDPOINT
  lakefs://[?endpoint=http://host:8000&namespace=s3://bucket/lakefs]
                               LakeFSVersionStore (version stores only); LAKEFS_ENDPOINT,
                               LAKEFS_ACCESS_KEY_ID, LAKEFS_SECRET_ACCESS_KEY,
                               LAKEFS_STORAGE_NAMESPACE

A URI never carries credentials: one with user info ('s3://key:secret@...') or a secret-looking
query parameter is refused, and `redact_uri` is what to log.
"""

import os
from pathlib import Path
from urllib.parse import parse_qs, urlsplit, urlunsplit

from storage._errors import StorageError
from storage._local_store import LocalObjectStore
from storage._object_store import ObjectStore
from storage._versioning import VersionStore

S3_ENDPOINT_ENV = "AUTOPERI_S3_ENDPOINT"
_SECRET_WORDS = ("key", "secret", "password", "token", "credential")
_TRUE = {"1", "true", "yes", "on"}


def redact_uri(uri: str) -> str:
    """The URI with user info and query string removed (safe to log)."""
    parts = urlsplit(uri)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def open_object_store(uri: str) -> ObjectStore:
    """An ObjectStore for a file:// path or an s3:// URI (see the module notes)."""
    parts = _split_checked(uri)
    if parts.scheme in ("", "file"):
        if parts.netloc not in ("", "localhost"):
            raise StorageError(f"file URIs must be local (file:///path), got {redact_uri(uri)}")
        durable = _query(parts).get("durable", "true").lower() in _TRUE
        return LocalObjectStore(Path(parts.path or uri), durable=durable)
    if parts.scheme == "s3":
        return _open_s3(parts)
    raise StorageError(f"unsupported object store URI scheme {parts.scheme!r} in {redact_uri(uri)}")


def open_version_store(uri: str, root: str = "versions") -> VersionStore:
    """A VersionStore: embedded (LocalVersionStore under `root`) on a file:// or s3:// object
    store, or lakeFS for lakefs:// URIs."""
    parts = _split_checked(uri)
    if parts.scheme == "lakefs":
        from storage._lakefs_store import LakeFSVersionStore

        query = _query(parts)
        return LakeFSVersionStore.connect(
            endpoint=query.get("endpoint") or (f"http://{parts.netloc}" if parts.netloc else None),
            storage_namespace=query.get("namespace"),
        )
    from storage._embedded import LocalVersionStore

    return LocalVersionStore(open_object_store(uri), root=root)


def _open_s3(parts) -> ObjectStore:
    from storage._s3_store import S3ObjectStore

    query = _query(parts)
    endpoint = query.get("endpoint") or os.environ.get(S3_ENDPOINT_ENV) or "s3.amazonaws.com"
    if "://" in endpoint:
        raise StorageError("give the S3 endpoint as host:port and secure=true|false, no scheme")
    return S3ObjectStore.connect(
        endpoint,
        parts.netloc,
        parts.path.strip("/"),
        secure=query.get("secure", "true").lower() in _TRUE,
        region=query.get("region", "us-east-1"),
        create_bucket=query.get("create", "false").lower() in _TRUE,
    )


def _split_checked(uri: str):
    parts = urlsplit(uri)
    if parts.username or parts.password:
        raise StorageError(
            f"credentials in the URI are refused ({redact_uri(uri)}): set them in the environment"
        )
    for name in _query(parts):
        if any(word in name.lower() for word in _SECRET_WORDS):
            raise StorageError(
                f"query parameter {name!r} looks like a credential: use the environment"
            )
    return parts


def _query(parts) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(parts.query).items()}
