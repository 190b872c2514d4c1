"""Reading samples and reference splits, writing sample files.

Samples (`load_samples`):
- a directory of CIF files (every data block of every `*.cif`, files in name order);
- an extxyz file (`ase.io.read(path, index=":")`); `atoms.info` may carry `id`, `gt_index`,
  `gt_id`;
- a JSON sample file: a list (or `{"crystals": [...]}`) of objects
  `{"id": str, "lattice": [[3 floats] x 3] (rows a, b, c, Angstrom),
  "frac_coords": [[3 floats] x n], "atomic_numbers": [n ints], "properties": {str: float},
  "gt_id": str (optional)}`;
- in memory: pymatgen `Structure`s or objects with `to_pymatgen()` (e.g. `xtal.Crystal`).

CSP ground truth of a sample: `properties["gt_index"]` (row of the reference split file, 0-based),
or `gt_id` (the split's `material_id`); for CIF files a name `gt<row>` or `gt<row>_<rank>.cif`.
Samples without any of these are matched by position (sample i <-> reference row i mod n), the
layout of DiffCSP's k passes over the test set. Candidates of one ground truth keep input order
(the first is the k = 1 candidate).

Reference splits: `dataset:split` or `dataset:split[start:stop]` (rows of the split file), e.g.
`perov_5:test`, `mp_20:test[:300]`, resolved against `$AUTOPERI_DATA_DIR` by the dataset contract
(`autoperi_data.parse_split`, `split_path`).

CSV splits and CIF files are read with `autoperi_data.read_records` with its validation limits
switched off, so that CDVAE's building and validity rules alone decide (a record xtal cannot read
at all is "not constructed"). xtal keeps the coordinates as written; pymatgen's CIF parser (which
CDVAE/DiffCSP used) snaps values within about 1e-4 of simple fractions such as 2/3, which changes
1 of the 3,785 Perov-5 test crystals by 6e-5 in one fractional coordinate.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from autoperi_data import (
    PERMISSIVE_LIMITS,
    CrystalArrays,
    DatasetError,
    Record,
    SplitSpec,
    data_dir,
    parse_split,
    read_records,
    split_path,
)
from pymatgen.core import Structure
from xtal import CrystalError

from ._cache import Cache
from ._structs import SampleRecord, build_record, finish_record

_CIF_GT = re.compile(r"^gt(?P<row>\d+)(_.*)?$")
_SPLIT_NAMESPACE = "split-xtal-v1"


class EvalInputError(ValueError):
    """A sample file or reference specification that cannot be used; the message says why."""


def parse_reference(spec: str) -> SplitSpec:
    """Parse `dataset:split[start:stop]`; unknown datasets raise `EvalInputError`."""
    try:
        return parse_split(spec)
    except DatasetError as exc:
        raise EvalInputError(str(exc).replace("split ", "reference ", 1)) from None


def data_dir_from_env() -> Path:
    """`$AUTOPERI_DATA_DIR`, which must name an existing directory."""
    try:
        return data_dir()
    except DatasetError:
        raise EvalInputError("AUTOPERI_DATA_DIR is not set to the datasets directory") from None


def _pack(payloads: list[CrystalArrays | None], ids: list[str]) -> dict[str, np.ndarray]:
    ok = [p for p in payloads if p is not None]
    return {
        "lattices": np.array([p[0] for p in ok]).reshape(-1, 3, 3),
        "numbers": np.concatenate([p[1] for p in ok]) if ok else np.zeros(0, np.int64),
        "frac": np.concatenate([p[2] for p in ok]) if ok else np.zeros((0, 3)),
        "counts": np.array([len(p[1]) for p in ok], dtype=np.int64),
        "rows": np.array([i for i, p in enumerate(payloads) if p is not None], dtype=np.int64),
        "ids": np.array(ids, dtype=str),
    }


def _unpack(packed: dict[str, np.ndarray]) -> list[tuple[int, str, CrystalArrays]]:
    ends = np.cumsum(packed["counts"])
    starts = ends - packed["counts"]
    out = []
    for j, row in enumerate(packed["rows"]):
        a, b = starts[j], ends[j]
        payload = CrystalArrays(packed["lattices"][j], packed["numbers"][a:b], packed["frac"][a:b])
        out.append((int(row), str(packed["ids"][row]), payload))
    return out


def load_split(
    data_dir: Path, dataset: str, split: str, cache: Cache, rows: slice | None = None
) -> list[SampleRecord]:
    """Rows of a split CSV as records (`index` = file row, `id` = material_id), read with
    `autoperi_data.read_records`. Parsed structures are cached under the sha256 of the file (plus
    the row slice when only a slice was read), so a file is parsed once."""
    path = split_path(dataset, split, data_dir, must_exist=False)
    if not path.is_file():
        raise EvalInputError(f"split file {path} does not exist")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    rows = rows or slice(None)
    part = f"{digest}[{rows.start}:{rows.stop}]"
    found = cache.get_many(_SPLIT_NAMESPACE, [digest, part])
    if digest in found:
        return _records(found[digest], rows)
    if part not in found:
        whole = rows.start in (None, 0) and rows.stop is None
        found[part] = _read_split_rows(path, rows)
        cache.put_many(_SPLIT_NAMESPACE, {digest if whole else part: found[part]})
    return _records(found[part], rows)


def _read_split_rows(path: Path, rows: slice) -> dict[str, np.ndarray]:
    """Parse the rows of a CSV split that `rows` selects (a negative bound reads the whole file)."""
    stream = read_records(path, limits=PERMISSIVE_LIMITS)
    bounded = (rows.start or 0) >= 0 and (rows.stop is None or rows.stop >= 0)
    if bounded:
        stream = itertools.islice(stream, rows.stop)
    payloads: list[CrystalArrays | None] = []
    ids: list[str] = []
    for record in stream:
        wanted = not bounded or record.index >= (rows.start or 0)
        keep = wanted and record.crystal is not None
        payloads.append(CrystalArrays.of(record.crystal) if keep else None)
        ids.append(record.key)
    return _pack(payloads, ids)


def _records(packed: dict[str, np.ndarray], rows: slice) -> list[SampleRecord]:
    wanted = set(range(len(packed["ids"]))[rows])
    out = []
    for row, mid, payload in _unpack(packed):
        if row not in wanted:
            continue
        record = SampleRecord(row, mid, None, payload[1])
        out.append(finish_record(record, payload.to_pymatgen()))
    return out


def load_reference(spec: SplitSpec, data_dir: Path, cache: Cache) -> list[SampleRecord]:
    """The (sliced) reference split."""
    rows = slice(spec.start, spec.stop)
    return load_split(data_dir, spec.dataset, spec.split, cache, rows)


def _gt_fields(record: SampleRecord, info: dict[str, Any]) -> SampleRecord:
    if "gt_index" in info and info["gt_index"] is not None:
        record.gt_index = int(info["gt_index"])
    if info.get("gt_id") not in (None, ""):
        record.gt_id = str(info["gt_id"])
    return record


def _from_structure(index: int, structure: Structure, ident: str, info: dict) -> SampleRecord:
    numbers = np.array([site.specie.Z for site in structure], dtype=np.int64)
    record = finish_record(SampleRecord(index, ident, None, numbers), structure)
    record.properties = {k: float(v) for k, v in info.items() if isinstance(v, int | float)}
    return _gt_fields(record, info)


def _load_cif_dir(path: Path) -> list[SampleRecord]:
    records: list[SampleRecord] = []
    for file in sorted(path.glob("*.cif")):
        match = _CIF_GT.match(file.stem)
        info: dict[str, Any] = {"gt_index": int(match["row"])} if match else {}
        try:
            parsed = list(read_records(file, limits=PERMISSIVE_LIMITS))
        except (CrystalError, OSError) as error:
            parsed = [Record(0, file.stem, None, f"parse_error: {error}")]
        for k, item in enumerate(parsed):
            ident = file.stem if len(parsed) == 1 else f"{file.stem}#{k}"
            if item.crystal is None:
                record = SampleRecord(len(records), ident, None, np.zeros(0, np.int64))
                record.reason = f"parse_error: {item.code}"
                records.append(_gt_fields(record, info))
                continue
            props = {**dict(item.crystal.properties), **info}
            records.append(_from_structure(len(records), item.crystal.to_pymatgen(), ident, props))
    if not records:
        raise EvalInputError(f"no CIF files in {path}")
    return records


def _load_extxyz(path: Path) -> list[SampleRecord]:
    import ase.io

    records = []
    for i, atoms in enumerate(ase.io.read(path, index=":")):
        info = dict(atoms.info)
        record = build_record(
            i,
            np.array(atoms.cell),
            atoms.numbers,
            atoms.get_scaled_positions(wrap=False),
            id=str(info.get("id", i)),
        )
        record.properties = {k: float(v) for k, v in info.items() if isinstance(v, int | float)}
        records.append(_gt_fields(record, info))
    return records


def _load_json(path: Path) -> list[SampleRecord]:
    data = json.loads(path.read_text())
    # a sample file ("crystals") or `autoperi score --json` output ("results": scored structures)
    items = data.get("crystals", data.get("results")) if isinstance(data, dict) else data
    records = []
    for i, item in enumerate(items):
        try:
            lattice, frac = item["lattice"], item["frac_coords"]
            numbers = item["atomic_numbers"]
        except (KeyError, TypeError) as error:
            raise EvalInputError(f"{path}: crystal {i} lacks field {error}") from None
        props = dict(item.get("properties") or {})
        frac = np.asarray(frac, dtype=float).reshape(-1, 3)
        record = build_record(
            i, lattice, numbers, frac, id=str(item.get("id", i)), properties=props
        )
        records.append(_gt_fields(record, {**props, "gt_id": item.get("gt_id")}))
    return records


def load_samples(source: str | Path | Sequence[Any]) -> list[SampleRecord]:
    """Samples from a CIF directory, an extxyz file, a JSON sample file, or objects in memory."""
    if isinstance(source, str | Path):
        path = Path(source)
        if path.is_dir():
            return _load_cif_dir(path)
        if not path.is_file():
            raise EvalInputError(f"sample source {path} does not exist")
        if path.suffix.lower() == ".json":
            return _load_json(path)
        if path.suffix.lower() in (".extxyz", ".xyz"):
            return _load_extxyz(path)
        raise EvalInputError(f"{path}: expected a CIF directory, .json or .extxyz sample file")
    records = []
    for i, item in enumerate(source):
        structure = item if isinstance(item, Structure) else item.to_pymatgen()
        info = {
            **dict(getattr(structure, "properties", {}) or {}),
            **dict(getattr(item, "properties", {}) or {}),
        }
        records.append(_from_structure(i, structure, str(getattr(item, "id", "") or i), info))
    return records


def write_samples_json(
    structures: Sequence[Structure],
    path: Path,
    ids: Sequence[str] | None = None,
    properties: Sequence[dict[str, float]] | None = None,
) -> Path:
    """Write structures as a JSON sample file (the format `load_samples` reads)."""
    items = []
    for i, structure in enumerate(structures):
        lattice, numbers, frac = CrystalArrays.from_pymatgen(structure)
        items.append(
            {
                "id": ids[i] if ids is not None else str(i),
                "lattice": lattice.tolist(),
                "frac_coords": frac.tolist(),
                "atomic_numbers": numbers.tolist(),
                "properties": dict(properties[i]) if properties is not None else {},
            }
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(items))
    return path
