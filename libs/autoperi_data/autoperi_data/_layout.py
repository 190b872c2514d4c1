"""How a dataset version stores its crystals (the ingest service writes it, the featurestore and
the scorer read it).

A dataset `name` lives in the version-store repository `repo_name(name)`. In a commit:
  crystals/<content hash>.pb   each canonical crystal, a serialised `crystal.v1.Crystal`
                               (content_hash and source provenance set);
  sources/<sha256>.<cif|csv>   the raw text each record came from.
A commit is a set: its crystals are read in content-hash order (`crystal_keys`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

CRYSTALS_PREFIX = "crystals/"
SOURCES_PREFIX = "sources/"
_CRYSTAL_SUFFIX = ".pb"
_DATASET_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{2,62}$")


def repo_name(dataset: str) -> str:
    """The version-store repository of a dataset ('_' is stored as '--'); ValueError naming the
    rule when the name is not a valid dataset name."""
    if not isinstance(dataset, str) or not _DATASET_RE.match(dataset) or "--" in dataset:
        raise ValueError(
            f"invalid dataset name {dataset!r}: use 3-63 lower-case letters, digits, '_' or '-'"
            " (no '--'), starting with a letter or digit"
        )
    repo = dataset.replace("_", "--")
    if len(repo) > 63:
        raise ValueError(f"dataset name {dataset!r} is too long once stored (max 63)")
    return repo


def dataset_name(repo: str) -> str:
    """Inverse of `repo_name`."""
    return repo.replace("--", "_")


def crystal_key(content_hash: str) -> str:
    """Tree key of a canonical crystal."""
    return f"{CRYSTALS_PREFIX}{content_hash}{_CRYSTAL_SUFFIX}"


def hash_of_key(key: str) -> str:
    """Content hash of a crystal tree key (inverse of `crystal_key`)."""
    return key[len(CRYSTALS_PREFIX) : -len(_CRYSTAL_SUFFIX)]


def source_key(sha256: str, kind: str) -> str:
    """Tree key of a raw source text (`kind` cif or csv)."""
    return f"{SOURCES_PREFIX}{sha256}.{kind}"


def crystal_keys(tree: Iterable[str]) -> list[str]:
    """The crystal keys of a commit's tree keys, in content-hash order (a commit's order)."""
    return sorted(k for k in tree if k.startswith(CRYSTALS_PREFIX) and k.endswith(_CRYSTAL_SUFFIX))
