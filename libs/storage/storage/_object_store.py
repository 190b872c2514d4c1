"""The object store interface: flat keys -> immutable-once-written byte objects.

Every backend gives these guarantees (the contract tests check them):
- a put is all-or-nothing: a reader sees the old object, the new one, or nothing, never a part;
- `compare_and_swap` is the only conditional write and backs the version store's branch heads;
- `list` yields keys in sorted order (by code point, which is S3's UTF-8 byte order);
- content-addressed blobs live at `blob_key(sha256)` and are verified on read.
"""

import hashlib
import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from storage._errors import CorruptObject
from storage._keys import CHUNK_BYTES, blob_key, sha256_bytes, sha256_stream


@dataclass(frozen=True)
class ObjectInfo:
    """What a store knows about one object.

    `etag` is an opaque version token for `compare_and_swap` (the sha256 on the local store, the
    server's ETag on S3); `sha256` is the hex digest of the content when the store knows it.
    """

    key: str
    size: int
    etag: str
    sha256: str | None = None


class ObjectStore(ABC):
    """A key -> bytes store. Keys follow `storage.check_key`; errors are `StorageError`s."""

    @abstractmethod
    def put_bytes(self, key: str, data: bytes) -> ObjectInfo:
        """Write `data` at `key` atomically (replacing any previous object)."""

    @abstractmethod
    def get_bytes(self, key: str) -> bytes:
        """The whole object; ObjectNotFound if absent."""

    @abstractmethod
    def get_versioned(self, key: str) -> tuple[bytes, str]:
        """The object and its etag, read consistently (for a later `compare_and_swap`)."""

    @abstractmethod
    def put_file(self, key: str, path: str | Path) -> ObjectInfo:
        """Upload a local file atomically, streaming it (constant memory in the file size)."""

    @abstractmethod
    def open_read(self, key: str) -> AbstractContextManager[BinaryIO]:
        """A context manager giving a binary stream of the object (`read(n)` until b'')."""

    @abstractmethod
    def exists(self, key: str) -> bool:
        """True if an object is stored at `key`."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object at `key`; deleting an absent key is not an error."""

    @abstractmethod
    def list_keys(self, prefix: str = "") -> Iterator[str]:
        """Keys starting with `prefix` (a plain string prefix, not a folder), sorted."""

    @abstractmethod
    def stat(self, key: str) -> ObjectInfo:
        """Size, etag and (when known) sha256 of the object; ObjectNotFound if absent."""

    @abstractmethod
    def compare_and_swap(self, key: str, data: bytes, expected_etag: str | None) -> ObjectInfo:
        """Write `data` only if the object's current etag is `expected_etag`.

        `expected_etag=None` means "only if no object exists". Raises PreconditionFailed when the
        condition does not hold; the write is atomic with the check (see each backend's notes).
        """

    def describe(self) -> str:
        """A human-readable location with no credentials in it."""
        return type(self).__name__

    def uri(self, key: str) -> str:
        """Where a client reads `key` directly (file:///..., s3://bucket/...), no credentials."""
        return f"{self.describe()}/{key}"

    def get_file(self, key: str, path: str | Path, expected_sha256: str | None = None) -> Path:
        """Stream the object into `path` (written atomically); verify it if a sha256 is given."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
        try:
            digest = _copy_hashing(self, key, fd)
            if expected_sha256 is not None and digest != expected_sha256:
                raise CorruptObject(
                    f"{key}: content hashes to {digest}, expected {expected_sha256}"
                )
            os.replace(tmp, path)
        except BaseException:
            _unlink_quietly(tmp)
            raise
        return path

    def put_blob(self, data: bytes) -> str:
        """Store `data` content-addressed; return its sha256 (the blob's identity). Idempotent."""
        digest = sha256_bytes(data)
        key = blob_key(digest)
        if not self.exists(key):
            self.put_bytes(key, data)
        return digest

    def put_blobs(self, blobs: Iterable[bytes]) -> list[str]:
        """Store many blobs; return their sha256s in order. Backends override this to batch."""
        return [self.put_blob(data) for data in blobs]

    def put_blob_file(self, path: str | Path) -> str:
        """Store a local file content-addressed (streaming); return its sha256."""
        with open(path, "rb") as fh:
            digest, _ = sha256_stream(fh)
        key = blob_key(digest)
        if not self.exists(key):
            self.put_file(key, path)
        return digest

    def get_blob(self, sha256: str) -> bytes:
        """The blob with this sha256, verified; ObjectNotFound or CorruptObject otherwise."""
        data = self.get_bytes(blob_key(sha256))
        if sha256_bytes(data) != sha256:
            raise CorruptObject(f"blob {sha256} is corrupt: its content hashes differently")
        return data

    def has_blob(self, sha256: str) -> bool:
        """True if the blob with this sha256 is stored."""
        return self.exists(blob_key(sha256))


def _copy_hashing(store: ObjectStore, key: str, fd: int) -> str:
    """Copy object `key` into the open file descriptor `fd` (closing it); return the sha256."""
    digest = hashlib.sha256()
    with os.fdopen(fd, "wb") as out, store.open_read(key) as src:
        while chunk := src.read(CHUNK_BYTES):
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def _unlink_quietly(path: str) -> None:
    with suppress(FileNotFoundError):
        os.unlink(path)
