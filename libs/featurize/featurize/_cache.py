"""Featurise a dataset split into cached tensor shards keyed by (dataset hash, config hash).

Layout under ``cache_dir``::

    <dataset_hash[:16]>-<config_hash[:16]>/manifest.json, shard-00000.pt, ...
    sources/<sha256 of a source file>.json      (lets a re-run skip parsing that file)

The dataset hash is the SHA-256 over the sorted crystal content hashes, so it names the set of
physical crystals. A cache entry is used only when its ``records_hash`` (the ordered crystal hashes,
ids and properties) also matches, so renamed or re-labelled data never read stale shards. Entries
are written to a temporary directory and renamed into place, so a crash leaves no partial entry.
"""

import hashlib
import json
import logging
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from autoperi_data import read_records
from periodic import keys as fields
from xtal import Crystal, CrystalError

from featurize._config import FORMAT_VERSION, FeaturizerConfig, dataset_hash
from featurize._shards import build_shard, load_shard, save_shard
from featurize._stats import DatasetStats, compute_stats

log = logging.getLogger(__name__)
MANIFEST = "manifest.json"
_SOURCES = "sources"
_MAX_REJECTS_LISTED = 20


@dataclass(frozen=True)
class FeaturizedSplit:
    """A featurised split in the cache: its keys, statistics and shard files."""

    directory: Path
    dataset_hash: str
    config_hash: str
    config: FeaturizerConfig
    stats: DatasetStats
    num_rejected: int
    shard_files: tuple[str, ...]

    @property
    def shard_paths(self) -> list[Path]:
        """Absolute paths of the shard files, in dataset order."""
        return [self.directory / name for name in self.shard_files]

    def shards(self) -> Iterator[dict[str, Any]]:
        """Load the shards one by one (see ``featurize.load_shard``)."""
        for path in self.shard_paths:
            yield load_shard(path)


def featurize_split(
    source: Iterable[Crystal] | str | Path,
    cache_dir: str | Path,
    config: FeaturizerConfig | None = None,
) -> FeaturizedSplit:
    """Featurise ``source`` (crystals, or a CIF/CSV file read with ``autoperi_data.read_records``).

    Returns the cached entry when one exists for the same data and configuration; otherwise
    builds it. Records that fail to parse or canonicalise are skipped and counted. Raises
    ValueError when no crystal is left.
    """
    config = config or FeaturizerConfig()
    cache_dir = Path(cache_dir)
    source_key = _file_digest(Path(source)) if isinstance(source, str | Path) else None
    if source_key is not None and (hit := _lookup_source(cache_dir, source_key, config)):
        return hit
    crystals, rejects = _collect(source, config.canonical)
    if not crystals:
        raise ValueError(f"no valid crystal in the dataset ({len(rejects)} rejected)")
    hashes = [c.content_hash() for c in crystals]
    keys = {"dataset_hash": dataset_hash(hashes), "records_hash": _records_hash(crystals, hashes)}
    directory = cache_dir / f"{keys['dataset_hash'][:16]}-{config.config_hash()[:16]}"
    entry = _open_if_valid(directory, keys["records_hash"])
    if entry is None:
        entry = _write_entry(directory, crystals, hashes, rejects, keys, config)
    if source_key is not None:
        _remember_source(cache_dir, source_key, keys)
    return entry


def open_featurized(directory: str | Path) -> FeaturizedSplit:
    """The featurised split stored in ``directory`` (a cache entry)."""
    directory = Path(directory)
    manifest = json.loads((directory / MANIFEST).read_text())
    return FeaturizedSplit(
        directory=directory,
        dataset_hash=manifest["dataset_hash"],
        config_hash=manifest["config_hash"],
        config=FeaturizerConfig(**manifest["config"]),
        stats=DatasetStats.from_dict(manifest["stats"]),
        num_rejected=manifest["num_rejected"],
        shard_files=tuple(shard["file"] for shard in manifest["shards"]),
    )


def _collect(
    source: Iterable[Crystal] | str | Path, canonical: bool
) -> tuple[list[Crystal], list[str]]:
    """Valid crystals (canonical if asked) and a message per rejected record."""
    if isinstance(source, str | Path):
        records = read_records(source)
        items = ((r.key, r.crystal, r.error) for r in records)
    else:
        items = ((c.id, c, None) for c in source)
    crystals, rejects = [], []
    for key, crystal, error in items:
        if crystal is None:
            rejects.append(f"{key}: {error}")
            continue
        try:
            crystals.append(crystal.canonical() if canonical else crystal)
        except CrystalError as exc:
            rejects.append(f"{key}: {exc.code}: {exc}")
    if rejects:
        log.warning("skipped %d records that could not be featurised", len(rejects))
    return crystals, rejects


def _records_hash(crystals: list[Crystal], hashes: list[str]) -> str:
    digest = hashlib.sha256()
    for crystal, value in zip(crystals, hashes, strict=True):
        row = [value, crystal.id, sorted(crystal.properties.items())]
        digest.update(json.dumps(row).encode() + b"\n")
    return digest.hexdigest()


def _open_if_valid(directory: Path, records_hash: str) -> FeaturizedSplit | None:
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if manifest.get("records_hash") != records_hash or manifest.get("format") != FORMAT_VERSION:
        return None
    return open_featurized(directory)


def _write_entry(
    directory: Path,
    crystals: list[Crystal],
    hashes: list[str],
    rejects: list[str],
    keys: dict[str, str],
    config: FeaturizerConfig,
) -> FeaturizedSplit:
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=directory.parent))
    try:
        shards = []
        for index, start in enumerate(range(0, len(crystals), config.shard_size)):
            stop = start + config.shard_size
            shard = build_shard(crystals[start:stop], hashes[start:stop], config)
            save_shard(shard, staging / f"shard-{index:05d}.pt")
            shards.append(_shard_summary(f"shard-{index:05d}.pt", shard))
        manifest = {
            "format": FORMAT_VERSION,
            **keys,
            "config_hash": config.config_hash(),
            "config": asdict(config),
            "num_rejected": len(rejects),
            "rejected": rejects[:_MAX_REJECTS_LISTED],
            "shards": shards,
            "stats": compute_stats(crystals).to_dict(),
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=1))
        if directory.exists():
            shutil.rmtree(directory)
        staging.rename(directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("featurised %d crystals into %s", len(crystals), directory)
    return open_featurized(directory)


def _shard_summary(name: str, shard: dict[str, Any]) -> dict[str, Any]:
    summary = {"file": name, "num_crystals": len(shard[fields.CRYSTAL_HASH])}
    summary["num_atoms"] = int(shard[fields.ATOMIC_NUMBERS].shape[0])
    if fields.EDGE_INDEX in shard:
        summary["num_edges"] = int(shard[fields.EDGE_INDEX].shape[1])
    return summary


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _lookup_source(
    cache_dir: Path, source_key: str, config: FeaturizerConfig
) -> FeaturizedSplit | None:
    try:
        keys = json.loads((cache_dir / _SOURCES / f"{source_key}.json").read_text())
    except (OSError, ValueError):
        return None
    directory = cache_dir / f"{keys['dataset_hash'][:16]}-{config.config_hash()[:16]}"
    return _open_if_valid(directory, keys["records_hash"])


def _remember_source(cache_dir: Path, source_key: str, keys: dict[str, str]) -> None:
    (cache_dir / _SOURCES).mkdir(parents=True, exist_ok=True)
    (cache_dir / _SOURCES / f"{source_key}.json").write_text(json.dumps(keys))
