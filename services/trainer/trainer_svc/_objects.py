"""Reading object-store references and storing checkpoints content-addressed.

An ObjectRef (a request's shard, a featurestore's shard) is read only as the blob of its sha256
in the service's own store, and only when its uri is where that store keeps the blob
(`names_blob`): a uri is compared, never opened.

A checkpoint in the object store is its files as blobs plus a manifest blob (JSON, sorted keys):
`{"format": 1, "run_id", "step", "epoch", "metrics", "created", "files": [{"path", "sha256",
"size_bytes"}, ...]}`. The checkpoint id is the hex sha256 of the manifest's bytes, so the id
names the exact files; readers verify every file against it.
"""

import hashlib
import io
import json
import os
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import torch
from storage import ObjectNotFound, ObjectStore, blob_key

MANIFEST_MEDIA_TYPE = "application/json"
MANIFEST_FORMAT = 1
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_FILE_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def is_sha256(value: str) -> bool:
    """True for 64 lower-case hex characters."""
    return bool(_SHA256.match(value))


def names_blob(ref: dict[str, Any], objects: ObjectStore) -> bool:
    """Whether an ObjectRef (dict with uri, sha256) names the blob `sha256` of `objects`: its uri
    must be `objects.uri(blob_key(sha256))`; a file:// uri is compared by its real path
    (symlinks and '.'/'..' resolved), any other by its text.

    The uri is only compared, never opened: readers go through the store by key, so a request
    cannot point the service at a host file or at another store.
    """
    sha256 = ref.get("sha256", "")
    if not is_sha256(sha256):
        return False
    expected = objects.uri(blob_key(sha256))
    if urlsplit(expected).scheme != "file":
        return ref.get("uri") == expected
    # the store's own uri: its root is a resolved path and the keys hold no '.' or '..'
    return _real_path(ref.get("uri", "")) == os.path.normpath(unquote(urlsplit(expected).path))


def _real_path(uri: str) -> str | None:
    """The real path of a local file:// uri; None for another scheme, a remote host, a query or
    fragment, or a path the OS refuses."""
    parts = urlsplit(uri)
    if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
        return None
    if parts.query or parts.fragment:
        return None
    try:
        return os.path.realpath(unquote(parts.path))
    except (OSError, ValueError):  # a NUL byte, a path too long for the OS
        return None


def read_ref(ref: dict[str, Any], objects: ObjectStore) -> bytes:
    """The bytes of an ObjectRef (dict with uri, sha256): the blob `sha256` of `objects`.

    Contract: reads nothing unless `names_blob(ref, objects)`; ValueError (naming no path)
    then. ObjectNotFound when the blob is absent, CorruptObject when it hashes differently.
    """
    if not names_blob(ref, objects):
        raise ValueError(f"ref of blob {ref.get('sha256', '')[:64]!r} is not in the object store")
    return objects.get_blob(ref["sha256"])


def ref_exists(ref: dict[str, Any], objects: ObjectStore) -> bool:
    """Whether `objects` holds the blob `sha256` of a ref (of `size_bytes`, when given and not
    0), without reading it. Callers check `names_blob` first."""
    try:
        info = objects.stat(blob_key(ref["sha256"]))
    except ObjectNotFound:
        return False
    return not ref.get("size_bytes") or info.size == ref["size_bytes"]


def read_shards(refs: list[dict[str, Any]], objects: ObjectStore) -> list[dict[str, Any]]:
    """Tensor shards of verified references (`read_ref`), loaded with
    `torch.load(weights_only=True)`."""
    return [torch.load(io.BytesIO(read_ref(r, objects)), weights_only=True) for r in refs]


def shards_version(refs: list[dict[str, Any]]) -> str:
    """Data version of a shard list: sha256 over the shards' sha256s, in order."""
    return hashlib.sha256("\n".join(r["sha256"] for r in refs).encode()).hexdigest()


def publish_checkpoint(
    objects: ObjectStore, directory: Path, run_id: str, step: int, epoch: int, metrics: dict
) -> tuple[str, dict[str, Any]]:
    """Store the files of a checkpoint directory and its manifest; (checkpoint id, manifest ref)."""
    files = []
    for path in sorted(p for p in Path(directory).iterdir() if p.is_file()):
        digest = objects.put_blob_file(path)
        files.append({"path": path.name, "sha256": digest, "size_bytes": path.stat().st_size})
    manifest = {
        "format": MANIFEST_FORMAT,
        "run_id": run_id,
        "step": step,
        "epoch": epoch,
        "metrics": metrics,
        "created": time.time(),
        "files": files,
    }
    data = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    checkpoint_id = objects.put_blob(data)
    ref = {
        "uri": objects.uri(blob_key(checkpoint_id)),
        "sha256": checkpoint_id,
        "size_bytes": len(data),
        "media_type": MANIFEST_MEDIA_TYPE,
    }
    return checkpoint_id, ref


def read_manifest(objects: ObjectStore, checkpoint_id: str) -> dict[str, Any]:
    """The manifest of a checkpoint (verified: its bytes hash to the id); ValueError (also
    JSONDecodeError) when the blob is not one, ObjectNotFound when it is absent."""
    if not is_sha256(checkpoint_id):
        raise ValueError(f"not a checkpoint id (64 hex characters): {checkpoint_id!r}")
    manifest = json.loads(objects.get_blob(checkpoint_id))
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise ValueError(f"blob {checkpoint_id} is not a checkpoint manifest (format 1)")
    return manifest


def fetch_checkpoint(objects: ObjectStore, checkpoint_id: str, dest: str | Path) -> Path:
    """Download a checkpoint's files into `dest`, each verified against the manifest's sha256.

    The result is a model checkpoint directory (`autoperi_model.Generator.from_checkpoint`).
    """
    dest = Path(dest)
    for entry in read_manifest(objects, checkpoint_id)["files"]:
        if not _FILE_NAME.match(entry["path"]):
            raise ValueError(f"checkpoint {checkpoint_id} names a bad file {entry['path']!r}")
        objects.get_file(blob_key(entry["sha256"]), dest / entry["path"], entry["sha256"])
    return dest
