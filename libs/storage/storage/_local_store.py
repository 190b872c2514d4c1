"""LocalObjectStore: the embedded default, a directory on a local filesystem.

Guarantees: every write goes to a temporary file under `<root>/.autoperi/tmp` and is renamed into
place with `os.replace`, so readers (in any process) see the old or the new object, never a part;
with `durable=True` the file and its directory are fsync'ed before the call returns, so a completed
write also survives a power loss. `compare_and_swap` holds an exclusive `flock` on a per-key lock
file under `<root>/.autoperi/locks` while it checks and writes: it is atomic among all threads and
processes of one host on a local filesystem (flock is not reliable on network filesystems). The
etag is the sha256 of the content, so `stat` reads the whole file. A key cannot be both an object
and a prefix of another key ('a' and 'a/b'): the second write raises InvalidKey.
"""

import fcntl
import hashlib
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

from storage._errors import InvalidKey, ObjectNotFound, PreconditionFailed
from storage._keys import (
    CHUNK_BYTES,
    RESERVED_PREFIX,
    blob_key,
    check_key,
    check_prefix,
    sha256_bytes,
    sha256_stream,
)
from storage._object_store import ObjectInfo, ObjectStore


class LocalObjectStore(ObjectStore):
    """Objects as files under `root`; see the module notes for the guarantees."""

    def __init__(self, root: str | Path, *, durable: bool = True) -> None:
        self.root = Path(root).expanduser().resolve()
        self.durable = durable
        self._tmp = self.root / RESERVED_PREFIX / "tmp"
        self._locks = self.root / RESERVED_PREFIX / "locks"
        self._tmp.mkdir(parents=True, exist_ok=True)
        self._locks.mkdir(parents=True, exist_ok=True)

    def describe(self) -> str:
        return f"file://{self.root}"

    def uri(self, key: str) -> str:
        return (Path(self.root) / key).as_uri()

    def __repr__(self) -> str:
        return f"LocalObjectStore({str(self.root)!r})"

    # -- writes ---------------------------------------------------------------------------------

    def put_bytes(self, key: str, data: bytes) -> ObjectInfo:
        self._write_atomic(key, lambda fh: fh.write(data), sync=self.durable)
        digest = sha256_bytes(data)
        return ObjectInfo(key, len(data), digest, digest)

    def put_file(self, key: str, path: str | Path) -> ObjectInfo:
        digest = hashlib.sha256()
        size = 0

        def copy(out: BinaryIO) -> None:
            nonlocal size
            with open(path, "rb") as src:
                while chunk := src.read(CHUNK_BYTES):
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)

        self._write_atomic(key, copy, sync=self.durable)
        return ObjectInfo(key, size, digest.hexdigest(), digest.hexdigest())

    def put_blobs(self, blobs: Iterable[bytes]) -> list[str]:
        """Write the missing blobs unsynced, then fsync them together (faster than one by one)."""
        digests, written = [], []
        for data in blobs:
            digest = sha256_bytes(data)
            digests.append(digest)
            key = blob_key(digest)
            if not self._path(key).is_file():
                self._write_atomic(key, lambda fh, d=data: fh.write(d), sync=False)
                written.append(self._path(key))
        if self.durable:
            _fsync_all(written)
        return digests

    def compare_and_swap(self, key: str, data: bytes, expected_etag: str | None) -> ObjectInfo:
        with self._lock(key):
            current = self._current_etag(key)
            if current != expected_etag:
                raise PreconditionFailed(
                    f"{key}: expected version {expected_etag}, found {current or 'no object'}"
                )
            return self.put_bytes(key, data)

    def delete(self, key: str) -> None:
        with suppress(FileNotFoundError, IsADirectoryError):
            os.unlink(self._path(key))

    def cleanup_temporary(self, older_than_s: float = 3600.0) -> int:
        """Remove temporary files left by killed writers; return how many were removed."""
        cutoff = time.time() - older_than_s
        removed = 0
        for entry in os.scandir(self._tmp):
            if entry.stat().st_mtime < cutoff:
                _unlink_quietly(entry.path)
                removed += 1
        return removed

    # -- reads ----------------------------------------------------------------------------------

    def get_bytes(self, key: str) -> bytes:
        with self.open_read(key) as fh:
            return fh.read()

    def get_versioned(self, key: str) -> tuple[bytes, str]:
        data = self.get_bytes(key)
        return data, sha256_bytes(data)

    def open_read(self, key: str) -> BinaryIO:
        """The open file (a context manager); ObjectNotFound if absent."""
        try:
            return open(self._path(key), "rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectNotFound(f"no object at {key!r} in {self.describe()}") from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def stat(self, key: str) -> ObjectInfo:
        with self.open_read(key) as fh:
            digest, size = sha256_stream(fh)
        return ObjectInfo(key, size, digest, digest)

    def list_keys(self, prefix: str = "") -> Iterator[str]:
        check_prefix(prefix)
        base = self.root / prefix.rpartition("/")[0]
        keys = [key for key in self._walk(base) if key.startswith(prefix)]
        return iter(sorted(keys))

    # -- internals ------------------------------------------------------------------------------

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def _walk(self, base: Path) -> Iterator[str]:
        reserved = self.root / RESERVED_PREFIX
        if base == reserved or reserved in base.parents:
            return
        for dirpath, dirnames, filenames in os.walk(base):
            if Path(dirpath) == self.root:
                dirnames[:] = [d for d in dirnames if d != RESERVED_PREFIX]
            rel = Path(dirpath).relative_to(self.root).as_posix()
            for name in filenames:
                yield name if rel == "." else f"{rel}/{name}"

    def _write_atomic(self, key: str, write: Callable[[BinaryIO], object], sync: bool) -> None:
        target = self._path(key)
        fd, tmp = tempfile.mkstemp(dir=self._tmp)
        try:
            with os.fdopen(fd, "wb") as fh:
                write(fh)
                if sync:
                    fh.flush()
                    os.fsync(fh.fileno())
            _replace_into(tmp, target, key)
        except BaseException:
            _unlink_quietly(tmp)
            raise
        if sync:
            _fsync_dir(target.parent)

    def _current_etag(self, key: str) -> str | None:
        try:
            return self.stat(key).etag
        except ObjectNotFound:
            return None

    @contextmanager
    def _lock(self, key: str) -> Iterator[None]:
        lock_path = self._locks / f"{sha256_bytes(key.encode())}.lock"
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # per open file: excludes other threads too
            yield
        finally:
            os.close(fd)  # closing releases the lock; a killed holder releases it as well


def _replace_into(tmp: str, target: Path, key: str) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, target)
    except (FileExistsError, NotADirectoryError, IsADirectoryError) as exc:
        raise InvalidKey(f"{key!r} collides with an existing object or prefix") from exc


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_all(paths: list[Path]) -> None:
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    for parent in {p.parent for p in paths}:
        _fsync_dir(parent)


def _unlink_quietly(path: str) -> None:
    with suppress(FileNotFoundError):
        os.unlink(path)
