"""autoperi_data: the dataset contract.

What a dataset is, wherever it is read: the benchmark split files and the `dataset:split[a:b]`
notation (`split_path`, `parse_split`, `data_dir`), the readers of crystal files (CIF and
CDVAE/DiffCSP CSV: `read_records`, `csv_rows`; no other package parses CSV), how a dataset
version stores its crystals and how to read them back (`repo_name`, `crystal_key`,
`commit_crystals`, ...), and `CrystalArrays`, the one array form of a crystal. Imports numpy,
pymatgen and xtal only (the generated crystal proto when decoding a stored crystal).
"""

from autoperi_data._arrays import CrystalArrays
from autoperi_data._commits import (
    CommitReader,
    commit_crystal_bytes,
    commit_crystals,
    decode_crystal,
)
from autoperi_data._layout import (
    CRYSTALS_PREFIX,
    SOURCES_PREFIX,
    crystal_key,
    crystal_keys,
    dataset_name,
    hash_of_key,
    repo_name,
    source_key,
)
from autoperi_data._readers import PERMISSIVE_LIMITS, Record, csv_rows, read_records
from autoperi_data._splits import (
    DATA_DIR_ENV,
    DATASETS,
    SPLITS,
    DatasetError,
    SplitSpec,
    data_dir,
    parse_split,
    read_split,
    split_path,
)
from autoperi_data._streams import gunzip_bounded
from autoperi_data._summary import LoadStats, RecordSummary, load_split_stats, summarize_records

__all__ = [
    "CRYSTALS_PREFIX",
    "DATASETS",
    "DATA_DIR_ENV",
    "PERMISSIVE_LIMITS",
    "SOURCES_PREFIX",
    "SPLITS",
    "CommitReader",
    "CrystalArrays",
    "DatasetError",
    "LoadStats",
    "Record",
    "RecordSummary",
    "SplitSpec",
    "commit_crystal_bytes",
    "commit_crystals",
    "crystal_key",
    "crystal_keys",
    "csv_rows",
    "data_dir",
    "dataset_name",
    "decode_crystal",
    "gunzip_bounded",
    "hash_of_key",
    "load_split_stats",
    "parse_split",
    "read_records",
    "read_split",
    "repo_name",
    "source_key",
    "split_path",
    "summarize_records",
]
