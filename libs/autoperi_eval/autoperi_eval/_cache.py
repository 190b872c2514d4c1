"""On-disk cache of per-structure results (fingerprints, energies, space groups, parsed splits).

One SQLite file, `<cache dir>/autoperi_eval.sqlite`, table `kv(namespace, key, value)`: the
namespace names the computation and its settings (e.g. `crystalnn-ops/matminer-0.10.1`), the key
is `structure_key` (sha256 of the structure's canonical description), the value an `.npz` blob
(never pickle). Only the parent process reads and writes it. The cache directory is
`$AUTOPERI_CACHE_DIR`, else `~/.cache/autoperi`.
"""

from __future__ import annotations

import io
import os
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

Value = dict[str, np.ndarray]
T = TypeVar("T")


def default_cache_dir() -> Path:
    """`$AUTOPERI_CACHE_DIR` if set, else `~/.cache/autoperi`."""
    value = os.environ.get("AUTOPERI_CACHE_DIR", "")
    return Path(value) if value else Path.home() / ".cache" / "autoperi"


@dataclass
class CacheStats:
    """How many items of one labelled computation were computed and how many came from disk."""

    computed: int = 0
    cached: int = 0


def _encode(value: Value) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **value)
    return buffer.getvalue()


def _decode(blob: bytes) -> Value:
    with np.load(io.BytesIO(blob), allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


class Cache:
    """Key-value store of `.npz` values; `directory=None` keeps everything in memory only."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self.stats: dict[str, CacheStats] = {}
        self._memory: dict[tuple[str, str], bytes] = {}
        self._db: sqlite3.Connection | None = None
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(directory / "autoperi_eval.sqlite", timeout=120)
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS kv (namespace TEXT, key TEXT, value BLOB, "
                "PRIMARY KEY (namespace, key))"
            )
            self._db.commit()

    def close(self) -> None:
        """Close the database connection."""
        if self._db is not None:
            self._db.close()
            self._db = None

    def get_many(self, namespace: str, keys: Iterable[str]) -> dict[str, Value]:
        """Values found for `keys` (missing keys are absent from the result)."""
        wanted = list(dict.fromkeys(keys))
        found: dict[str, Value] = {}
        if self._db is None:
            for key in wanted:
                if (namespace, key) in self._memory:
                    found[key] = _decode(self._memory[(namespace, key)])
            return found
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT key, value FROM kv WHERE namespace = ? AND key IN ({marks})",
                [namespace, *chunk],
            )
            found.update({key: _decode(blob) for key, blob in rows})
        return found

    def put_many(self, namespace: str, items: dict[str, Value]) -> None:
        """Store values (replacing older ones with the same key)."""
        encoded = [(namespace, key, _encode(value)) for key, value in items.items()]
        if self._db is None:
            self._memory.update({(ns, key): blob for ns, key, blob in encoded})
            return
        self._db.executemany("INSERT OR REPLACE INTO kv VALUES (?, ?, ?)", encoded)
        self._db.commit()

    def cached_compute(
        self,
        namespace: str,
        label: str,
        keys: Sequence[str],
        items: Sequence[T],
        compute: Callable[[list[T], int, int], list[Value]],
        flush_every: int = 2000,
    ) -> list[Value]:
        """Values for all `items` in order, computing only those whose key is not cached.

        Items sharing a key are computed once. `compute(items, done_before, n_missing)` maps a list
        of items to a list of values (it may run a process pool; the two counts are for progress).
        Counts go to `self.stats[label]`; results are written in batches of `flush_every`, so an
        interrupted run keeps what it finished.
        """
        stats = self.stats.setdefault(label, CacheStats())
        found = self.get_many(namespace, keys)
        missing: dict[str, T] = {}
        for key, item in zip(keys, items, strict=True):
            if key not in found and key not in missing:
                missing[key] = item
        stats.cached += len(keys) - sum(1 for k in keys if k in missing)
        todo = list(missing.items())
        for start in range(0, len(todo), flush_every):
            batch = todo[start : start + flush_every]
            values = compute([item for _, item in batch], start, len(todo))
            new = {key: value for (key, _), value in zip(batch, values, strict=True)}
            self.put_many(namespace, new)
            found.update(new)
        stats.computed += sum(1 for k in keys if k in missing)
        return [found[key] for key in keys]
