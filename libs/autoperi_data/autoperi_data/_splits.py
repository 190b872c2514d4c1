"""Where the benchmark splits live: `$AUTOPERI_DATA_DIR/<folder of the dataset>/<split>.csv`.

The one place that knows the layout of the datasets directory (CDVAE/DiffCSP CSV files) and the
`dataset:split[start:stop]` notation the commands use.
"""

from __future__ import annotations

import itertools
import os
import re
from dataclasses import dataclass
from pathlib import Path

from autoperi_data._readers import PERMISSIVE_LIMITS, Record, read_records

DATA_DIR_ENV = "AUTOPERI_DATA_DIR"
#: dataset -> folder of its split CSV files under the datasets directory.
DATASETS = {"perov_5": "perov_5", "mp_20": "mp_20/assembled", "carbon_24": "carbon_24"}
SPLITS = ("train", "val", "test")
_SPEC = re.compile(r"^(?P<ds>[\w-]+):(?P<split>\w+)(\[(?P<a>-?\d*):(?P<b>-?\d*)\])?$")


class DatasetError(ValueError):
    """A split specification, dataset name or datasets directory that cannot be used."""


@dataclass(frozen=True)
class SplitSpec:
    """A parsed `dataset:split[start:stop]`: rows start..stop-1 of the split file (None: open)."""

    dataset: str
    split: str
    start: int | None = None
    stop: int | None = None

    def __str__(self) -> str:
        if self.start is None and self.stop is None:
            return f"{self.dataset}:{self.split}"
        a = "" if self.start is None else self.start
        b = "" if self.stop is None else self.stop
        return f"{self.dataset}:{self.split}[{a}:{b}]"

    @property
    def rows(self) -> slice:
        """The selected rows as a slice."""
        return slice(self.start, self.stop)


def parse_split(spec: str) -> SplitSpec:
    """Parse `dataset:split[start:stop]` (bounds optional); DatasetError for a malformed spec or
    an unknown dataset."""
    match = _SPEC.match(spec.strip())
    if match is None:
        raise DatasetError(f"split {spec!r} is not of the form dataset:split[start:stop]")
    if match["ds"] not in DATASETS:
        known = ", ".join(sorted(DATASETS))
        raise DatasetError(f"unknown dataset {match['ds']!r} in {spec!r}; known: {known}")
    a, b = match["a"], match["b"]
    return SplitSpec(match["ds"], match["split"], int(a) if a else None, int(b) if b else None)


def data_dir(value: str | None = None) -> Path:
    """The datasets directory: `value`, else `$AUTOPERI_DATA_DIR`; DatasetError when unset or
    not a directory."""
    value = os.environ.get(DATA_DIR_ENV, "") if value is None else value
    if not value:
        raise DatasetError(f"{DATA_DIR_ENV} is not set: point it at the datasets directory")
    if not Path(value).is_dir():
        raise DatasetError(f"{DATA_DIR_ENV}={value} is not a directory")
    return Path(value)


def split_path(dataset: str, split: str, root: Path | None = None, must_exist: bool = True) -> Path:
    """The CSV file of a split, under `root` (default `data_dir()`); DatasetError for an unknown
    dataset, or (with `must_exist`) a split file that is not there, e.g. carbon_24 train."""
    if dataset not in DATASETS:
        raise DatasetError(f"unknown dataset {dataset!r}; known: {', '.join(sorted(DATASETS))}")
    path = (root or data_dir()) / DATASETS[dataset] / f"{split}.csv"
    if must_exist and not path.is_file():
        raise DatasetError(f"unknown split {dataset}:{split} (no file {path})")
    return path


def read_split(spec: SplitSpec, root: Path | None = None) -> list[Record]:
    """The readable records (`Record`, `index` = file row) of the rows of a split that `spec`
    selects, read with `PERMISSIVE_LIMITS` (the benchmark rows as given)."""
    records = read_records(split_path(spec.dataset, spec.split, root), limits=PERMISSIVE_LIMITS)
    bounded = (spec.start or 0) >= 0 and spec.stop is not None and spec.stop >= 0
    read = list(itertools.islice(records, spec.stop) if bounded else records)
    return [r for r in read[spec.rows] if r.crystal is not None]
