"""Key and name rules shared by every backend, and the content-address helpers."""

import hashlib
import re
from typing import BinaryIO

from storage._errors import InvalidKey

RESERVED_PREFIX = ".autoperi"  # first key segment reserved for a store's own bookkeeping
BLOB_PREFIX = "blobs/sha256/"
MAX_KEY_BYTES = 1024
CHUNK_BYTES = 1 << 20  # streaming chunk size

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_REPO_RE = re.compile(r"^[a-z0-9][a-z0-9-]{2,62}$")  # the lakeFS repository rule, kept everywhere
_REF_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,127}$")  # branch and tag names


def check_key(key: str) -> str:
    """Return `key` if it is a valid object key, else raise InvalidKey.

    Contract: 1..1024 UTF-8 bytes, '/'-separated non-empty segments, no '.' or '..' segment,
    no backslash or control character, and not under the reserved first segment '.autoperi'.
    """
    if not isinstance(key, str) or not key:
        raise InvalidKey(f"object key must be a non-empty string, got {key!r}")
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise InvalidKey(f"object key longer than {MAX_KEY_BYTES} bytes: {key[:60]!r}...")
    if "\\" in key or any(ord(ch) < 32 or ord(ch) == 127 for ch in key):
        raise InvalidKey(f"object key has a backslash or control character: {key!r}")
    segments = key.split("/")
    if any(seg in ("", ".", "..") for seg in segments):
        raise InvalidKey(f"object key has an empty, '.' or '..' segment: {key!r}")
    if segments[0] == RESERVED_PREFIX:
        raise InvalidKey(f"object keys under {RESERVED_PREFIX!r} are reserved: {key!r}")
    return key


def check_prefix(prefix: str) -> str:
    """Return a listing prefix if valid: '' or a string whose complete segments are valid."""
    if not isinstance(prefix, str):
        raise InvalidKey(f"prefix must be a string, got {prefix!r}")
    if "\\" in prefix or any(ord(ch) < 32 or ord(ch) == 127 for ch in prefix):
        raise InvalidKey(f"prefix has a backslash or control character: {prefix!r}")
    if any(seg in ("", ".", "..") for seg in prefix.split("/")[:-1]):
        raise InvalidKey(f"prefix has an empty, '.' or '..' segment: {prefix!r}")
    return prefix


def check_repo_name(name: str) -> str:
    """Return a repository name if valid: 3-63 chars of [a-z0-9-], not starting with '-'."""
    if not isinstance(name, str) or not _REPO_RE.match(name):
        raise InvalidKey(
            f"invalid repository name {name!r}: use 3-63 lowercase letters, digits or '-'"
        )
    return name


def check_ref_name(name: str, what: str = "branch") -> str:
    """Return a branch or tag name if valid: 1-128 chars of [A-Za-z0-9_-], not starting with '-'."""
    if not isinstance(name, str) or not _REF_RE.match(name):
        raise InvalidKey(f"invalid {what} name {name!r}: use letters, digits, '_' or '-'")
    return name


def is_sha256(value: str) -> bool:
    """True if `value` is a lowercase hex sha256 digest."""
    return isinstance(value, str) and bool(_SHA256_RE.match(value))


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of `data`."""
    return hashlib.sha256(data).hexdigest()


def sha256_stream(stream: BinaryIO) -> tuple[str, int]:
    """Hex sha256 and byte count of a stream read to its end in CHUNK_BYTES chunks."""
    digest = hashlib.sha256()
    size = 0
    while chunk := stream.read(CHUNK_BYTES):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def blob_key(sha256: str) -> str:
    """Object key of the content-addressed blob with this sha256: 'blobs/sha256/ab/abcdef...'."""
    if not is_sha256(sha256):
        raise InvalidKey(f"not a sha256 hex digest: {sha256!r}")
    return f"{BLOB_PREFIX}{sha256[:2]}/{sha256}"


def join_key(*parts: str) -> str:
    """Join key parts with '/', skipping empty parts."""
    return "/".join(p.strip("/") for p in parts if p.strip("/"))
