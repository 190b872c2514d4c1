"""Reading object-store references and storing checkpoints content-addressed.

A checkpoint in the object store is its files as blobs plus a manifest blob (JSON, sorted keys):
`{"format": 1, "run_id", "step", "epoch", "metrics", "created", "files": [{"path", "sha256",
"size_bytes"}, ...]}`. The checkpoint id is the hex sha256 of the manifest's bytes, so the id
names the exact files; readers verify every file against it.
"""

import hashlib
import io
import json
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import torch
from storage import CorruptObject, ObjectStore, blob_key, sha256_bytes

MANIFEST_MEDIA_TYPE = "application/json"
MANIFEST_FORMAT = 1
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_FILE_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def is_sha256(value: str) -> bool:
    """True for 64 lower-case hex characters."""
    return bool(_SHA256.match(value))


def read_ref(ref: dict[str, Any], objects: ObjectStore | None) -> bytes:
    """The bytes of an ObjectRef (dict with uri, sha256), verified against its sha256.

    file:// URIs are read directly; anything else is read as the blob `sha256` of `objects`.
    Raises CorruptObject when the bytes hash differently, OSError/ObjectNotFound when absent.
    """
    parts = urlsplit(ref["uri"])
    if parts.scheme == "file":
        data = Path(unquote(parts.path)).read_bytes()
    elif objects is not None:
        data = objects.get_blob(ref["sha256"])
    else:
        raise ValueError(f"cannot read {ref['uri']!r} without an object store")
    if sha256_bytes(data) != ref["sha256"]:
        raise CorruptObject(f"{ref['uri']}: content does not match sha256 {ref['sha256']}")
    return data


def ref_exists(ref: dict[str, Any], objects: ObjectStore) -> bool:
    """Whether the object of a reference is there (and of its size, when given), without reading
    it: a file:// path, else the blob `sha256` of `objects`."""
    parts = urlsplit(ref["uri"])
    if parts.scheme == "file":
        path = Path(unquote(parts.path))
        return path.is_file() and (
            not ref["size_bytes"] or path.stat().st_size == ref["size_bytes"]
        )
    return objects.has_blob(ref["sha256"])


def read_shards(refs: list[dict[str, Any]], objects: ObjectStore | None) -> list[dict[str, Any]]:
    """Tensor shards of verified references, loaded with `torch.load(weights_only=True)`."""
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
    """The manifest of a checkpoint (verified: its bytes hash to the id)."""
    if not is_sha256(checkpoint_id):
        raise ValueError(f"not a checkpoint id (64 hex characters): {checkpoint_id!r}")
    manifest = json.loads(objects.get_blob(checkpoint_id))
    if manifest.get("format") != MANIFEST_FORMAT:
        raise ValueError(f"checkpoint {checkpoint_id} has unknown format {manifest.get('format')}")
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
