"""Benchmark datasets as tensors: CDVAE/DiffCSP CSV files read once and cached by content hash."""

from __future__ import annotations

import csv
import hashlib
import logging
import os
from pathlib import Path

import torch
from pymatgen.core import Structure

from autoperi_model._batch import CrystalBatch, CrystalTable

log = logging.getLogger(__name__)
DATA_DIR_ENV = "AUTOPERI_DATA_DIR"
CACHE_DIR_ENV = "AUTOPERI_CACHE_DIR"
CACHE_FORMAT = "v1"  # bump when the cached fields change


def data_dir() -> Path:
    """The datasets directory from AUTOPERI_DATA_DIR; a clear error when unset."""
    value = os.environ.get(DATA_DIR_ENV, "")
    if not value or not Path(value).is_dir():
        raise FileNotFoundError(f"set {DATA_DIR_ENV} to the datasets directory (got {value!r})")
    return Path(value)


def split_path(dataset: str, split: str, root: Path | None = None) -> Path:
    """CSV file of a split: `<root>/<dataset>/<split>.csv` (MP-20: `assembled/`)."""
    base = (root or data_dir()) / dataset
    path = base / "assembled" / f"{split}.csv" if dataset == "mp_20" else base / f"{split}.csv"
    if not path.is_file():
        raise FileNotFoundError(f"no split {split!r} for dataset {dataset!r} at {path}")
    return path


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes (the data version)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _parse_csv(path: Path) -> CrystalBatch:
    """Niggli-reduced crystals (coordinates wrapped to [0, 1)), in file order."""
    lattices, fracs, types = [], [], []
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            struct = Structure.from_str(row["cif"], fmt="cif").get_reduced_structure()
            lattices.append(struct.lattice.matrix)
            fracs.append(struct.frac_coords % 1.0)
            types.append(struct.atomic_numbers)
    return CrystalBatch.from_arrays(lattices, fracs, [list(z) for z in types], torch.float64)


def load_split(dataset: str, split: str, root: Path | None = None) -> tuple[CrystalTable, str]:
    """A split as a float64 table and its data version (sha256 of the CSV file).

    Parsed tensors are cached under AUTOPERI_CACHE_DIR (default: ~/.cache/autoperi) by content hash.
    """
    path = split_path(dataset, split, root)
    version = file_sha256(path)
    cache = Path(os.environ.get(CACHE_DIR_ENV, Path.home() / ".cache" / "autoperi"))
    cached = cache / f"{dataset}-{split}-{version[:16]}-{CACHE_FORMAT}.pt"
    if cached.is_file():
        state = torch.load(cached, weights_only=True)
        batch = CrystalBatch(**state)
    else:
        log.info("parsing %s", path)
        batch = _parse_csv(path)
        cache.mkdir(parents=True, exist_ok=True)
        torch.save({f: getattr(batch, f) for f in CrystalBatch.__dataclass_fields__}, cached)
    return CrystalTable.from_batch(batch), version
