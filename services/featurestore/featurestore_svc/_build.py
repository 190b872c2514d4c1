"""Building one feature unit: crystals of a commit -> shards and statistics in the object store.

Units: "tensors" (tensor shards, statistics, and graphs when the config has a cutoff) come from
`featurize.featurize_split`; "fingerprints" (CrystalNN structure and Magpie composition
fingerprints, one shard each) come from `autoperi_eval.compute_fingerprints`; "potential" (the
reference energies: CHGNet single point and bounded relaxation of every crystal, one hull
reference JSON document) comes from `autoperi_eval.reference_rows`. Every file is stored
content-addressed (`ObjectStore.put_blob_file`); the unit's manifest lists them.
"""

import json
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from autoperi_data import CrystalArrays
from featurize import featurize_split
from periodic import keys
from storage import ObjectStore, blob_key
from xtal import Crystal

from featurestore_svc._config import ResolvedConfig
from featurestore_svc._stats import dataset_statistics

SHARD_MEDIA_TYPE = "application/x-autoperi-shard+torch"
JSON_MEDIA_TYPE = "application/json"
TENSOR_KINDS = ("tensor_shards", "statistics", "graphs")
FINGERPRINT_KINDS = ("structure_fingerprints", "composition_fingerprints")
POTENTIAL_KINDS = ("reference_energies",)


def build_tensors(
    crystals: Sequence[Crystal], config: ResolvedConfig, objects: ObjectStore
) -> dict[str, Any]:
    """Featurise `crystals` (in the dataset's order) and store shards and statistics."""
    with tempfile.TemporaryDirectory(prefix="featurestore-") as tmp:
        split = featurize_split(list(crystals), Path(tmp), config.config)
        shards, first, neighbors = [], 0, []
        for path in split.shard_paths:
            shard = torch.load(path, weights_only=True)
            count = len(shard[keys.CRYSTAL_HASH])
            atoms = int(shard[keys.ATOMIC_NUMBERS].shape[0])
            shards.append(_store_file(objects, path, SHARD_MEDIA_TYPE, count, first, atoms))
            first += count
            if keys.EDGE_INDEX in shard:
                edges = shard[keys.EDGE_INDEX][0].long()
                neighbors.append(torch.bincount(edges, minlength=atoms).numpy())
    stats = dataset_statistics(crystals, np.concatenate(neighbors) if neighbors else None)
    stats["featurize"] = split.stats.to_dict()
    stats_path = Path(tempfile.mkdtemp(prefix="featurestore-")) / "statistics.json"
    stats_path.write_text(json.dumps(stats, sort_keys=True))
    total_atoms = sum(c.num_atoms for c in crystals)
    artifacts = {
        "tensor_shards": shards,
        "statistics": [
            _store_file(objects, stats_path, JSON_MEDIA_TYPE, len(crystals), 0, total_atoms)
        ],
    }
    stats_path.unlink()
    if config.config.cutoff is not None:
        artifacts["graphs"] = shards
    return {"artifacts": artifacts, "statistics": stats, "finished": time.time()}


def build_fingerprints(crystals: Sequence[Crystal], objects: ObjectStore) -> dict[str, Any]:
    """CrystalNN and Magpie fingerprints (autoperi_eval's definitions), one shard per kind."""
    from autoperi_eval import Cache, Pool, compute_fingerprints

    payloads = [CrystalArrays.of(c) for c in crystals]
    with Pool(1) as pool:
        struct, comp, ok = compute_fingerprints(payloads, Cache(None), pool, label="featurestore")
    hashes = [c.content_hash() for c in crystals]
    total_atoms = sum(c.num_atoms for c in crystals)
    artifacts = {}
    with tempfile.TemporaryDirectory(prefix="featurestore-") as tmp:
        for kind, values in (
            ("structure_fingerprints", struct),
            ("composition_fingerprints", comp),
        ):
            path = Path(tmp) / f"{kind}.pt"
            shard = {
                keys.CRYSTAL_HASH: hashes,
                "fingerprints": torch.tensor(values),
                "ok": torch.tensor(ok),
            }
            torch.save(shard, path)
            artifacts[kind] = [
                _store_file(objects, path, SHARD_MEDIA_TYPE, len(crystals), 0, total_atoms)
            ]
    return {"artifacts": artifacts, "statistics": None, "finished": time.time()}


def build_reference_energies(
    crystals: Sequence[Crystal], source: str, objects: ObjectStore, cache_dir: Path | None
) -> dict[str, Any]:
    """The crystals' CHGNet energies under the evaluation's protocol as one hull reference
    document (`autoperi_eval.HullReference`) naming `source` (dataset@commit); energies are
    cached under `cache_dir` (None: in memory), so an interrupted build resumes."""
    from autoperi_eval import (
        Cache,
        RelaxSettings,
        hull_document,
        potential_protocol,
        reference_rows,
    )

    relax = RelaxSettings()
    cache = Cache(cache_dir)
    try:
        payloads = [CrystalArrays.of(c) for c in crystals]
        hashes = [c.content_hash() for c in crystals]
        rows = reference_rows(payloads, hashes, relax=relax, cache=cache)
    finally:
        cache.close()
    document = hull_document(rows, potential_protocol(relax), [source])
    with tempfile.TemporaryDirectory(prefix="featurestore-") as tmp:
        path = Path(tmp) / "reference_energies.json"
        path.write_text(json.dumps(document))
        atoms = sum(c.num_atoms for c in crystals)
        stored = _store_file(objects, path, JSON_MEDIA_TYPE, len(crystals), 0, atoms)
    return {"artifacts": {"reference_energies": [stored]}, "statistics": None,
            "finished": time.time()}  # fmt: skip


def _store_file(
    objects: ObjectStore, path: Path, media_type: str, count: int, first: int, atoms: int
) -> dict[str, Any]:
    digest = objects.put_blob_file(path)
    return {
        "uri": objects.uri(blob_key(digest)),
        "sha256": digest,
        "size_bytes": path.stat().st_size,
        "media_type": media_type,
        "num_crystals": count,
        "first_index": first,
        "num_atoms": atoms,
    }
