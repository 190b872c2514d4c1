"""Checkpoint directories: weights (state dicts only), resumable training state and a manifest.

Layout of a checkpoint directory:
  model.pt        EMA weights of the FlowModel (`torch.save` of a state dict)
  train_state.pt  raw weights, EMA, optimizer, RNG state, step (only needed to resume)
  config.yaml     the run's Config
  manifest.json   config, data version, git commit, step, metrics, sha256 of model.pt, statistics
Everything is loaded with `torch.load(..., weights_only=True)`: a file that holds anything but
tensors and plain containers (a pickle of other objects, as a tampered checkpoint may) is refused
with `UnsafeCheckpoint`, never unpickled.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import pickle
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from autoperi_model._config import Config

MODEL_FILE = "model.pt"
STATE_FILE = "train_state.pt"
MANIFEST_FILE = "manifest.json"
CONFIG_FILE = "config.yaml"
FORMAT_VERSION = 1


class UnsafeCheckpoint(ValueError):
    """A checkpoint file that is not a plain tensor file: loading it would mean unpickling
    arbitrary objects, which could run code, so it is refused (the message says which file)."""


def _load_tensors(path: Path) -> Any:
    """The contents of a `torch.save` file of tensors and plain containers.

    Contract: loads with `weights_only=True` only; UnsafeCheckpoint (naming the file, without
    torch's advice to load it unsafely) when the file holds anything else or is no such file.
    """
    try:
        return torch.load(path, weights_only=True)
    except pickle.UnpicklingError:
        raise UnsafeCheckpoint(
            f"checkpoint {path.parent}: its weights ({path.name}) are not a plain tensor file;"
            " refused for safety (loading them would unpickle arbitrary objects)"
        ) from None


def git_commit(cwd: Path | None = None) -> str:
    """`git rev-parse HEAD`, or "unknown" outside a repository or before the first commit."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return result.stdout.strip() if result.returncode == 0 else "unknown"


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class Manifest:
    """What a checkpoint is: enough to rebuild the model and to trace its data and code."""

    config: Config
    data_version: str
    volume_per_atom: float
    step: int
    train_seconds: float
    metrics: dict[str, float]
    git_commit: str
    weights_sha256: str
    created: str
    num_atoms_counts: tuple[int, ...] = ()  # training crystals with n atoms at index n

    def to_json(self) -> dict[str, Any]:
        body = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "config"}
        config = self.config.model_dump(mode="json")
        kind = f"{self.config.task}/{self.config.process}"  # the Generator registry's key
        return {"format": FORMAT_VERSION, "kind": kind, "config": config, **body}

    @staticmethod
    def from_json(data: dict[str, Any]) -> Manifest:
        if data.get("format") != FORMAT_VERSION:
            raise ValueError(f"unsupported checkpoint format {data.get('format')!r}")
        fields = {
            f.name: data[f.name]
            for f in dataclasses.fields(Manifest)
            if f.name != "config" and (f.name in data or f.default is dataclasses.MISSING)
        }
        fields["num_atoms_counts"] = tuple(fields.get("num_atoms_counts", ()))
        return Manifest(config=Config.model_validate(data["config"]), **fields)


def save_checkpoint(
    directory: Path,
    model_state: dict[str, torch.Tensor],
    train_state: dict[str, Any] | None,
    manifest_fields: dict[str, Any],
) -> Manifest:
    """Write a checkpoint directory atomically (a sibling temporary directory, then a rename)."""
    directory = Path(directory)
    tmp = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    torch.save(model_state, tmp / MODEL_FILE)
    if train_state is not None:
        torch.save(train_state, tmp / STATE_FILE)
    manifest = Manifest(
        weights_sha256=sha256_file(tmp / MODEL_FILE),
        git_commit=git_commit(),
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        **manifest_fields,
    )
    (tmp / CONFIG_FILE).write_text(manifest.config.to_yaml())
    (tmp / MANIFEST_FILE).write_text(json.dumps(manifest.to_json(), indent=2) + "\n")
    old = directory.with_name(directory.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if directory.exists():
        directory.rename(old)
    tmp.rename(directory)
    shutil.rmtree(old, ignore_errors=True)
    return manifest


def read_manifest(directory: Path) -> Manifest:
    """The manifest of a checkpoint directory; a clear error if it is not one."""
    path = Path(directory) / MANIFEST_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{directory} is not a checkpoint directory (no {MANIFEST_FILE})")
    return Manifest.from_json(json.loads(path.read_text()))


def load_weights(directory: Path, verify: bool = True) -> tuple[dict[str, torch.Tensor], Manifest]:
    """EMA weights and manifest; with `verify`, the weights' sha256 must match the manifest."""
    manifest = read_manifest(directory)
    path = Path(directory) / MODEL_FILE
    if verify and sha256_file(path) != manifest.weights_sha256:
        raise ValueError(f"{path} does not match the sha256 in its manifest")
    return _load_tensors(path), manifest


def load_train_state(directory: Path) -> dict[str, Any]:
    """The resumable training state of a checkpoint directory."""
    path = Path(directory) / STATE_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{directory} holds no training state ({STATE_FILE}); cannot resume"
        )
    return _load_tensors(path)
