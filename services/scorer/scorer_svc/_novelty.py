"""Novelty against a dataset version that the ingest service wrote.

A dataset commit's crystals are read with the dataset contract (`autoperi_data`), bucketed by
reduced formula and cached per (dataset, commit), least recently used first out. A crystal is not
novel when its content hash is in the commit, or when pymatgen's `StructureMatcher()` (defaults,
as autoperi_eval's novelty) fits it to a reference crystal of the same reduced formula; pymatgen
Structures of a formula bucket are built on first use. A reference names a dataset by name and
a branch, tag or commit id in it (`check_reference`); nothing a request sends is a path.
"""

import threading
import warnings
from collections import OrderedDict
from collections.abc import Iterable

from autoperi_data import commit_crystal_bytes, decode_crystal, repo_name
from pymatgen.analysis.structure_matcher import StructureMatcher
from storage import InvalidKey, RefNotFound, RepositoryNotFound, VersionStore, check_ref_name
from svc_kit import InvalidInput, NotFound, shown_value
from xtal import Crystal

from scorer_svc._model import Reference


class NoveltyIndex:
    """The crystals of one dataset commit, for `match` queries (thread-safe)."""

    def __init__(self, dataset: str, commit: str, items: Iterable[tuple[str, bytes]]) -> None:
        self.dataset, self.commit = dataset, commit
        self.hashes: set[str] = set()
        self._crystals: dict[str, list[tuple[str, Crystal]]] = {}
        for content_hash, data in items:
            crystal = decode_crystal(data)
            self.hashes.add(content_hash)
            self._crystals.setdefault(crystal.formula, []).append((content_hash, crystal))
        self._structures: dict[str, list] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.hashes)

    def match(self, crystal: Crystal, content_hash: str = "") -> str | None:
        """Content hash of a reference crystal that matches `crystal`, None if it is novel."""
        if content_hash in self.hashes:
            return content_hash
        candidates = self._bucket(crystal.formula)
        if not candidates:
            return None
        matcher = StructureMatcher()
        structure = crystal.to_pymatgen()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for ref_hash, reference in candidates:
                if _fits(matcher, structure, reference):
                    return ref_hash
        return None

    def _bucket(self, formula: str) -> list:
        with self._lock:
            if formula not in self._structures:
                crystals = self._crystals.get(formula, [])
                self._structures[formula] = [(h, c.to_pymatgen()) for h, c in crystals]
            return self._structures[formula]


def _fits(matcher: StructureMatcher, a, b) -> bool:
    try:
        return bool(matcher.fit(a, b))
    except Exception:  # pymatgen fails on some degenerate pairs: no match
        return False


def check_reference(reference: Reference) -> str:
    """The version-store repository of `reference`'s dataset.

    Contract: a reference names a dataset of this scorer's store by name (and a branch, tag or
    commit id in it), never a file, a directory or a URI; InvalidInput otherwise, naming the
    field and repeating the value only when it is not path-like (`svc_kit.shown_value`).
    """
    try:
        repo = repo_name(reference.dataset)
    except ValueError:
        raise InvalidInput(
            f"novelty_reference.dataset {shown_value(reference.dataset)} is not a dataset name"
            " (3-63 lower-case letters, digits, '_' or '-', no '--'; paths and URIs are not"
            " accepted)"
        ) from None
    try:
        if reference.ref:
            check_ref_name(reference.ref)
    except InvalidKey:
        raise InvalidInput(
            f"novelty_reference.ref {shown_value(reference.ref)} is not a branch, tag or commit"
            " id (1-128 letters, digits, '_' or '-'; paths and URIs are not accepted)"
        ) from None
    return repo


class NoveltyReferences:
    """Resolves a `Reference` to its commit's `NoveltyIndex`, keeping `max_commits` cached."""

    def __init__(self, versions: VersionStore, max_commits: int = 4) -> None:
        self._versions = versions
        self._max = max_commits
        self._cache: OrderedDict[tuple[str, str], NoveltyIndex] = OrderedDict()
        self._lock = threading.Lock()
        self._building: dict[tuple[str, str], threading.Lock] = {}

    def index(self, reference: Reference) -> NoveltyIndex:
        """The index of the reference's commit (a branch resolves to its head now); NotFound /
        InvalidInput (svc_kit) for a missing dataset or ref, or an invalid name."""
        commit = self._resolve(reference)
        items = commit_crystal_bytes(self._versions, reference.dataset, commit)
        key = (reference.dataset, commit)
        with self._lock:
            build_lock = self._building.setdefault(key, threading.Lock())
        with build_lock:  # one build per commit, concurrent requests wait for it
            with self._lock:
                if key in self._cache:
                    self._cache.move_to_end(key)
                    return self._cache[key]
            index = NoveltyIndex(reference.dataset, commit, items)
            with self._lock:
                self._cache[key] = index
                while len(self._cache) > self._max:
                    self._cache.popitem(last=False)
                self._building.pop(key, None)
        return index

    def _resolve(self, reference: Reference) -> str:
        """The commit id of the reference (its dataset's default branch when ref is empty)."""
        repo = check_reference(reference)
        try:
            return self._versions.resolve(
                repo, reference.ref or self._versions.default_branch(repo)
            )
        except InvalidKey:
            raise InvalidInput(f"invalid ref {shown_value(reference.ref)}") from None
        except RepositoryNotFound:
            raise NotFound(f"dataset {reference.dataset!r} does not exist") from None
        except RefNotFound:
            raise NotFound(
                f"no branch or commit {reference.ref!r} in {reference.dataset!r}"
            ) from None

    def close(self) -> None:
        """Drop the cache."""
        self._cache.clear()
