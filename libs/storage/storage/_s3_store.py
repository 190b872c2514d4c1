"""S3ObjectStore: objects in an S3-compatible bucket (AWS S3, MinIO, moto) via the `minio` client.

Guarantees: S3 PUTs are atomic per object (a reader never sees a part). `compare_and_swap` sends
the S3 conditional-write headers `If-Match: <etag>` / `If-None-Match: *`, which AWS S3 (since
2024) and MinIO evaluate atomically with the write, so branch heads on those servers are true
compare-and-swap registers. moto 5.2.5 accepts both headers and answers 412 PreconditionFailed,
but checks the condition and writes without a lock, so two racing writers can both succeed there
(measured: 1 lost update in 400 contended swaps); the tests serialise moto's requests to model
the real servers. Credentials come from arguments or the environment, never from URIs or logs.
The client is thread-safe; `put_blobs` uploads on a small thread pool.
"""

import io
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from minio import Minio
from minio.error import S3Error
from urllib3.exceptions import HTTPError

from storage._errors import ObjectNotFound, PreconditionFailed, StorageError
from storage._keys import blob_key, check_key, check_prefix, sha256_bytes, sha256_stream
from storage._object_store import ObjectInfo, ObjectStore

ACCESS_KEY_ENVS = ("AUTOPERI_S3_ACCESS_KEY", "AWS_ACCESS_KEY_ID")
SECRET_KEY_ENVS = ("AUTOPERI_S3_SECRET_KEY", "AWS_SECRET_ACCESS_KEY")
_SHA_META = "sha256"  # user metadata -> header x-amz-meta-sha256
_MISSING = {"NoSuchKey", "NoSuchObject", "NotFound", "ResourceNotFound"}
_CONFLICT = {"PreconditionFailed", "ConditionalRequestConflict"}


def _from_env(names: tuple[str, ...]) -> str | None:
    return next((os.environ[n] for n in names if os.environ.get(n)), None)


class S3ObjectStore(ObjectStore):
    """Objects under `prefix` in `bucket`; see the module notes for the guarantees."""

    def __init__(self, client: Minio, bucket: str, prefix: str = "", *, workers: int = 8) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = (prefix.strip("/") + "/") if prefix.strip("/") else ""
        self.workers = workers

    @classmethod
    def connect(
        cls,
        endpoint: str,
        bucket: str,
        prefix: str = "",
        *,
        secure: bool = True,
        region: str | None = "us-east-1",
        access_key: str | None = None,
        secret_key: str | None = None,
        create_bucket: bool = False,
    ) -> "S3ObjectStore":
        """Open a bucket at `endpoint` ('host:port', no scheme).

        Credentials default to AUTOPERI_S3_ACCESS_KEY / AUTOPERI_S3_SECRET_KEY, then the AWS_*
        variables. With `create_bucket`, a missing bucket is created.
        """
        client = Minio(
            endpoint,
            access_key=access_key or _from_env(ACCESS_KEY_ENVS),
            secret_key=secret_key or _from_env(SECRET_KEY_ENVS),
            secure=secure,
            region=region,
        )
        store = cls(client, bucket, prefix)
        if create_bucket:
            store.ensure_bucket()
        return store

    def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist."""
        with self._errors("bucket"):
            if not self.client.bucket_exists(self.bucket):
                self.client.make_bucket(self.bucket)

    def describe(self) -> str:
        scheme = "https" if self.client._base_url.is_https else "http"
        return f"s3://{self.bucket}/{self.prefix} at {scheme}://{self.client._base_url.host}"

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}{key}"

    def __repr__(self) -> str:
        return f"S3ObjectStore({self.describe()!r})"

    # -- writes ---------------------------------------------------------------------------------

    def put_bytes(self, key: str, data: bytes) -> ObjectInfo:
        digest = sha256_bytes(data)
        with self._errors(key):
            result = self.client.put_object(
                self.bucket,
                self._name(key),
                io.BytesIO(data),
                len(data),
                metadata={_SHA_META: digest},
            )
        return ObjectInfo(key, len(data), result.etag or "", digest)

    def put_file(self, key: str, path: str | Path) -> ObjectInfo:
        with open(path, "rb") as fh:
            digest, size = sha256_stream(fh)
        with self._errors(key):
            result = self.client.fput_object(
                self.bucket, self._name(key), str(path), metadata={_SHA_META: digest}
            )
        return ObjectInfo(key, size, result.etag or "", digest)

    def put_blobs(self, blobs: Iterable[bytes]) -> list[str]:
        """Upload blobs on a thread pool (PUT is idempotent for content-addressed keys)."""
        datas = list(blobs)
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            infos = list(pool.map(lambda d: self.put_bytes(blob_key(sha256_bytes(d)), d), datas))
        return [info.sha256 or "" for info in infos]

    def compare_and_swap(self, key: str, data: bytes, expected_etag: str | None) -> ObjectInfo:
        headers = {
            "Content-Type": "application/octet-stream",
            f"x-amz-meta-{_SHA_META}": sha256_bytes(data),
        }
        if expected_etag is None:
            headers["If-None-Match"] = "*"
        else:
            headers["If-Match"] = f'"{expected_etag}"'
        try:
            # minio 7.2 has no public conditional PUT: _put_object sends our headers verbatim.
            result = self.client._put_object(self.bucket, self._name(key), data, headers)
        except S3Error as exc:
            if exc.code in _CONFLICT or exc.code in _MISSING:
                raise PreconditionFailed(f"{key}: not at version {expected_etag}") from None
            raise self._wrap(exc, key) from None
        except HTTPError as exc:
            raise StorageError(f"cannot reach {self.describe()}: {exc}") from None
        return ObjectInfo(key, len(data), result.etag or "", headers[f"x-amz-meta-{_SHA_META}"])

    def delete(self, key: str) -> None:
        with self._errors(key):
            self.client.remove_object(self.bucket, self._name(key))

    # -- reads ----------------------------------------------------------------------------------

    def get_bytes(self, key: str) -> bytes:
        return self.get_versioned(key)[0]

    def get_versioned(self, key: str) -> tuple[bytes, str]:
        with self._errors(key):
            response = self.client.get_object(self.bucket, self._name(key))
            try:
                return response.read(), response.headers.get("etag", "").replace('"', "")
            finally:
                response.close()
                response.release_conn()

    @contextmanager
    def open_read(self, key: str) -> Iterator[BinaryIO]:
        with self._errors(key):
            response = self.client.get_object(self.bucket, self._name(key))
        try:
            yield response  # urllib3 response: read(n) streams
        finally:
            response.close()
            response.release_conn()

    def exists(self, key: str) -> bool:
        try:
            self.stat(key)
        except ObjectNotFound:
            return False
        return True

    def stat(self, key: str) -> ObjectInfo:
        with self._errors(key):
            obj = self.client.stat_object(self.bucket, self._name(key))
        meta = obj.metadata or {}
        return ObjectInfo(key, obj.size or 0, obj.etag or "", meta.get(f"x-amz-meta-{_SHA_META}"))

    def list_keys(self, prefix: str = "") -> Iterator[str]:
        check_prefix(prefix)
        start = len(self.prefix)
        with self._errors(prefix or "/"):
            names = [
                o.object_name
                for o in self.client.list_objects(
                    self.bucket, prefix=self.prefix + prefix, recursive=True
                )
            ]
        return iter(sorted(name[start:] for name in names if name))

    # -- internals ------------------------------------------------------------------------------

    def _name(self, key: str) -> str:
        return self.prefix + check_key(key)

    @contextmanager
    def _errors(self, key: str) -> Iterator[None]:
        try:
            yield
        except S3Error as exc:
            raise self._wrap(exc, key) from None
        except HTTPError as exc:
            raise StorageError(f"cannot reach {self.describe()}: {exc}") from None

    def _wrap(self, exc: S3Error, key: str) -> StorageError:
        if exc.code in _MISSING:
            return ObjectNotFound(f"no object at {key!r} in {self.describe()}")
        if exc.code == "NoSuchBucket":
            return StorageError(f"bucket {self.bucket!r} does not exist at {self.describe()}")
        return StorageError(f"S3 error {exc.code} on {key!r} in {self.describe()}: {exc.message}")
