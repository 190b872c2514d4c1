"""Reading the crystals of a dataset commit (the layout of `_layout`) from a version store.

`versions` is a `storage.VersionStore` (typed structurally here: this library imports no storage
code, so the model can depend on it). Crystals come in content-hash order, a commit's order.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol

from xtal import Crystal

from autoperi_data._layout import CRYSTALS_PREFIX, crystal_key, crystal_keys, hash_of_key, repo_name


class CommitReader(Protocol):
    """The reads of `storage.VersionStore` used here."""

    def tree(self, repo: str, ref: str, prefix: str = "") -> Mapping[str, Any]: ...

    def read(self, repo: str, ref: str, key: str) -> bytes: ...


def commit_crystal_bytes(
    versions: CommitReader, dataset: str, commit: str, hashes: Iterable[str] | None = None
) -> Iterator[tuple[str, bytes]]:
    """(content hash, serialised `crystal.v1.Crystal`) of each crystal of `commit` of `dataset`
    (only those in `hashes` when given), in content-hash order. Blobs are read straight from the
    object store when the version store exposes one (`objects.get_blob`)."""
    repo = repo_name(dataset)
    tree = versions.tree(repo, commit, CRYSTALS_PREFIX)
    keys = crystal_keys(tree)
    if hashes is not None:
        wanted = {crystal_key(h) for h in hashes}
        keys = [k for k in keys if k in wanted]
    objects = getattr(versions, "objects", None)
    for key in keys:
        if objects is not None:
            yield hash_of_key(key), objects.get_blob(tree[key].sha256)
        else:
            yield hash_of_key(key), versions.read(repo, commit, key)


def decode_crystal(data: bytes) -> Crystal:
    """The `xtal.Crystal` of a stored crystal's bytes."""
    from autoperi.crystal.v1 import crystal_pb2
    from xtal.convert import from_proto

    return from_proto(crystal_pb2.Crystal.FromString(data))


def commit_crystals(versions: CommitReader, dataset: str, commit: str) -> list[Crystal]:
    """The crystals of `commit` of `dataset`, in content-hash order."""
    return [decode_crystal(data) for _, data in commit_crystal_bytes(versions, dataset, commit)]
