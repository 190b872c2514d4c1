"""`autoperi data hull`: the CHGNet hull reference of benchmark splits, built by the
featurestore per dataset commit, resumable across machines through a partial reference file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from autoperi_app._datasets import DatasetStore, SplitCommit
from autoperi_app._errors import UserError


def _arrays(store: DatasetStore, commit: SplitCommit) -> tuple[list, list[str]]:
    from autoperi_data import CrystalArrays

    crystals = store.crystals(commit)
    return [CrystalArrays.of(c) for c in crystals], [c.content_hash() for c in crystals]


def seed_from(path: Path, store: DatasetStore, commits: list[SplitCommit], cache_dir: Path) -> int:
    """Put the relaxations of a (partial or complete) hull reference file of the same protocol
    into the evaluation cache for the commits' crystals; how many. UserError for a file that is
    not a hull reference or was scored another way."""
    from autoperi_eval import (
        Cache,
        RelaxSettings,
        potential_protocol,
        read_json_document,
        seed_relaxations,
    )

    try:
        document = read_json_document(path)
        rows, protocol = document["results"], document["protocol"]
    except (OSError, EOFError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{path} is not a hull reference file: {exc}") from None
    if protocol != potential_protocol(RelaxSettings()):
        raise UserError(f"{path} was scored with {protocol}, not this protocol")
    cache = Cache(cache_dir)
    try:
        return sum(seed_relaxations(*_arrays(store, c), rows, cache) for c in commits)
    finally:
        cache.close()


def build(store: DatasetStore, commits: list[SplitCommit], cache_dir: Path) -> dict[str, Any]:
    """The complete hull reference of the commits (each commit's featurestore artifact, built
    where missing: CHGNet runs on what the cache does not hold), with the elemental references
    of the elements no crystal of the commits is made of alone."""
    from autoperi_eval import elemental_reference_rows, elements_without_reference, hull_document

    documents = [store.reference_energies(commit, cache_dir) for commit in commits]
    rows = [row for document in documents for row in document["results"]]
    elemental = elemental_reference_rows(elements_without_reference(rows))
    return hull_document(
        rows, documents[0]["protocol"], [str(c) for c in commits], elemental=elemental
    )


def partial(store: DatasetStore, commits: list[SplitCommit], cache_dir: Path) -> dict[str, Any]:
    """What the cache holds of the commits' hull reference so far, computing nothing: a partial
    reference (refused as a hull; `--resume-from` seeds a later build with it)."""
    from autoperi_eval import Cache, RelaxSettings, cached_rows, hull_document, potential_protocol

    cache = Cache(cache_dir)
    try:
        rows, expected = [], 0
        for commit in commits:
            crystals, hashes = _arrays(store, commit)
            rows += cached_rows(crystals, hashes, cache)
            expected += len(crystals)
    finally:
        cache.close()
    protocol = potential_protocol(RelaxSettings())
    return hull_document(rows, protocol, [str(c) for c in commits], expected)
