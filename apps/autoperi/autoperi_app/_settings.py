"""Where the CLI finds things: one place that reads the environment."""

import os
from pathlib import Path

from autoperi_app._errors import UserError

DATA_DIR_ENV = "AUTOPERI_DATA_DIR"
SPLIT_FILES = {
    "perov_5": "perov_5/{split}.csv",
    "carbon_24": "carbon_24/{split}.csv",
    "mp_20": "mp_20/assembled/{split}.csv",
}


def data_dir() -> Path:
    """The benchmark datasets directory, from AUTOPERI_DATA_DIR."""
    value = os.environ.get(DATA_DIR_ENV, "")
    if not value:
        raise UserError(f"{DATA_DIR_ENV} is not set: point it at the benchmark datasets directory")
    path = Path(value)
    if not path.is_dir():
        raise UserError(f"{DATA_DIR_ENV}={value} is not a directory")
    return path


def split_path(spec: str) -> Path:
    """Resolve a split spec such as `perov_5:test` to its CSV file."""
    dataset, _, split = spec.partition(":")
    if dataset not in SPLIT_FILES or split not in ("train", "val", "test"):
        known = ", ".join(f"{d}:{{train,val,test}}" for d in SPLIT_FILES)
        raise UserError(f"unknown split {spec!r}; expected one of {known}")
    path = data_dir() / SPLIT_FILES[dataset].format(split=split)
    if not path.is_file():
        raise UserError(f"split {spec} not found at {path}")
    return path
