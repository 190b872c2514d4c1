"""Featuriser configuration and the content-addressed cache key."""

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass

# Bump when the shard format or the computation changes: old caches then miss instead of lying.
FORMAT_VERSION = 1


@dataclass(frozen=True)
class FeaturizerConfig:
    """What the featuriser computes.

    canonical: store each crystal's canonical form (Niggli cell, coordinates in [0, 1)) instead
        of the cell as given;
    cutoff: radius (Angstrom) of the clean-structure graphs; None stores no graphs;
    max_neighbors: with a cutoff, keep only the K nearest images within it (kNN graph);
    shard_size: crystals per shard file.
    """

    canonical: bool = True
    cutoff: float | None = None
    max_neighbors: int | None = None
    shard_size: int = 2048

    def __post_init__(self) -> None:
        if self.cutoff is not None and not self.cutoff > 0:
            raise ValueError(f"cutoff must be positive (Angstrom), got {self.cutoff}")
        if self.max_neighbors is not None and (self.cutoff is None or self.max_neighbors < 1):
            raise ValueError("max_neighbors needs a cutoff and must be at least 1")
        if self.shard_size < 1:
            raise ValueError(f"shard_size must be at least 1, got {self.shard_size}")

    def config_hash(self) -> str:
        """Hex SHA-256 of the configuration and the shard format version."""
        payload = json.dumps({**asdict(self), "format": FORMAT_VERSION}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()


def dataset_hash(crystal_hashes: Iterable[str]) -> str:
    """Hex SHA-256 over the sorted crystal content hashes (one per line): independent of order."""
    digest = hashlib.sha256()
    for value in sorted(crystal_hashes):
        digest.update(value.encode() + b"\n")
    return digest.hexdigest()
