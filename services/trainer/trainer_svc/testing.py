"""Test helpers: a small real dataset as shards in an object store, a tiny config, a model
checkpoint, a server."""

import contextlib
import hashlib
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

import yaml
from autoperi.common.v1 import common_pb2
from autoperi_data import read_records, split_path
from autoperi_model import Config, build_model, save_checkpoint
from featurize import FeaturizerConfig, featurize_split
from ingest_svc.testing import serving
from storage import ObjectStore
from xtal import Crystal

from trainer_svc._server import TrainerDeps, create_server
from trainer_svc._settings import TrainerSettings
from trainer_svc.client import checkpoint_files

TINY_CONFIG = {
    "backbone": {"hidden": 32, "layers": 2, "num_rbf": 8, "time_dim": 8, "cutoff": 5.0},
    "train": {
        "batch_size": 16,
        "lr": 0.003,
        "warmup_steps": 2,
        "max_steps": 6,
        "checkpoint_every_steps": 3,
        "log_every_steps": 1,
    },
}


def tiny_config_yaml(**train) -> str:
    """The tiny model config (hidden 32, 2 layers, batch 16) as YAML, train fields overridden."""
    config = {**TINY_CONFIG, "train": {**TINY_CONFIG["train"], **train}}
    return yaml.safe_dump(config)


def model_checkpoint(config: Config, out: Path, volume_per_atom: float = 10.0) -> dict:
    """An untrained model checkpoint directory of `config` at `out` (what `train` writes, without
    training state); its weights by name."""
    weights = build_model(config, volume_per_atom).state_dict()
    fields = {"config": config, "data_version": "test", "volume_per_atom": volume_per_atom}
    save_checkpoint(out, weights, None, {**fields, "step": 0, "train_seconds": 0.0, "metrics": {}})
    return weights


def perov_subset(data_dir: Path, n: int, split: str = "train") -> list[Crystal]:
    """The first `n` valid crystals of a Perov-5 split."""
    records = read_records(split_path("perov_5", split, data_dir))
    valid = (r.crystal for r in records if r.crystal is not None)
    return list(itertools.islice(valid, n))


def shard_refs(
    objects: ObjectStore, crystals: list[Crystal], cache: Path, shard_size: int = 64
) -> list[common_pb2.ObjectRef]:
    """Featurise `crystals` (libs/featurize) and store the shards as blobs; their ObjectRefs."""
    split = featurize_split(crystals, cache, FeaturizerConfig(shard_size=shard_size))
    refs = []
    for path in split.shard_paths:
        digest = objects.put_blob_file(path)
        uri = objects.uri(f"blobs/sha256/{digest[:2]}/{digest}")
        refs.append(common_pb2.ObjectRef(uri=uri, sha256=digest, size_bytes=path.stat().st_size))
    return refs


@contextlib.contextmanager
def serving_trainer(
    objects: ObjectStore, root: Path, featurestore_address: str = "127.0.0.1:1", **settings
) -> Iterator:
    """A started trainer server on port 0 over `objects` (Ray Train storage under `root`)."""
    config = TrainerSettings(
        host="127.0.0.1",
        port=0,
        log_json=False,
        storage_uri=str(objects.root),
        featurestore_address=featurestore_address,
        ray_storage_path=str(root / "ray-train"),
        poll_s=0.2,
        **settings,
    )
    deps = TrainerDeps(objects, TrainerDeps.from_settings(config).featurestore)
    with serving(lambda: create_server(config, deps)) as server:
        yield server


def verified_checkpoint(objects: ObjectStore, checkpoint, dest: Path) -> Path:
    """Materialise a run's checkpoint (training.v1.Checkpoint) as a directory under `dest`,
    checked independently of the reader: the manifest's bytes hash to the checkpoint id and
    every file hashes to its manifest entry. Raises AssertionError otherwise."""
    data = Path(unquote(urlsplit(checkpoint.manifest.uri).path)).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if not digest == checkpoint.checkpoint_id == checkpoint.manifest.sha256:
        raise AssertionError(f"manifest {checkpoint.manifest.uri} does not hash to its id")
    path = checkpoint_files(objects, checkpoint.checkpoint_id, dest)
    for entry in json.loads(data)["files"]:
        if hashlib.sha256((path / entry["path"]).read_bytes()).hexdigest() != entry["sha256"]:
            raise AssertionError(f"{entry['path']} does not match its manifest sha256")
    return path
