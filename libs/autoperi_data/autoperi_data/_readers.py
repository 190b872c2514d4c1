"""Streaming readers for CIF files (one or many data blocks) and CDVAE/DiffCSP CSV files.

The only module of the project that parses CSV text (with `csv_rows`, which the ingest service and
its client use to cut CSV text at row boundaries).

`read_records(path)` checks the file itself at once (raising CrystalError for an empty, binary,
unrecognised or column-less file) and returns an iterator that parses one record at a time; a bad
record becomes a `Record` with an error, never an exception. Files may be gzip-compressed; what a
file can make the reader hold or decompress is bounded (`autoperi_data._streams`).
"""

import csv
import gzip
import io
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from xtal import (
    Crystal,
    CrystalError,
    Provenance,
    ValidationLimits,
    crystal_from_cif_block,
    split_cif_blocks,
)

from autoperi_data._streams import MAX_BLOCK_CHARS, bounded_lines, open_text

_HEAD_BYTES = 1 << 16
_MAX_CSV_FIELD = 1 << 30
_SURROGATE = re.compile("[\udc80-\udcff]")
_DATA_LINE = re.compile(r"^\s*data_(\S*)", re.IGNORECASE | re.MULTILINE)
_ID_COLUMNS = ("material_id", "id")
_CIF_SUFFIXES = (".cif", ".mcif")


#: limits that reject only what cannot be a crystal at all (non-finite numbers, unknown elements,
#: the default bounds on cell size and coordinates): benchmark rows as given, for the evaluation's
#: own rules and for reading a split's cells
PERMISSIVE_LIMITS = ValidationLimits(max_atoms=100_000, min_distance=0.0, min_volume=0.0)


@dataclass(frozen=True)
class Record:
    """One record of a crystal file: a crystal, or the reason it was rejected.

    index: 0-based position in the file (CSV data row or CIF data block); key: the record's id
    (CSV `material_id`, CIF block name) or its index; error: "<code>: <message>" or None.
    """

    index: int
    key: str
    crystal: Crystal | None
    error: str | None = None

    @property
    def code(self) -> str | None:
        """The CrystalError code of a rejected record (None when accepted)."""
        return None if self.error is None else self.error.split(":", 1)[0]


@dataclass(frozen=True)
class _Source:
    path: Path
    compressed: bool
    kind: str  # "csv" or "cif"
    name: str  # provenance source


def read_records(
    path: str | Path,
    *,
    limits: ValidationLimits | None = None,
    source: str | None = None,
    on_skipped: Callable[[Record], None] | None = None,
) -> Iterator[Record]:
    """Stream the crystals of a CIF or CDVAE/DiffCSP CSV file, each validated under `limits`.

    CSV: a `cif` column (required), an id column (`material_id`), and every other column whose
    value parses as a finite number kept as a property (index columns, `cif*` columns skipped).
    CIF: one record per data block, except that blocks without a structure (no cell, no atom
    sites: a journal's publication and powder-profile blocks) are not records when another
    block of the file states a structure; each such block goes to `on_skipped` instead, as a
    Record with code "no_structure" (when the whole file has no structure, they are the
    rejected records). Provenance: source = `source` or the file name, record = the record key.
    Raises CrystalError (empty, unknown_format, missing_column, not_utf8) or OSError for a file
    that cannot be read as a whole; problems of single records come back as `Record.error`.
    """
    found = _inspect(Path(path), source)
    limits = limits or ValidationLimits()
    if found.kind == "csv":
        return _csv_records(found, _csv_header(found), limits)
    return _cif_records(found, limits, on_skipped or (lambda record: None))


def _inspect(path: Path, source: str | None) -> _Source:
    with open(path, "rb") as raw:
        compressed = raw.read(2) == b"\x1f\x8b"
    try:
        with gzip.open(path, "rb") if compressed else open(path, "rb") as stream:
            head = stream.read(_HEAD_BYTES)
    except (OSError, EOFError, zlib.error) as exc:
        raise CrystalError("unknown_format", f"{path} cannot be decompressed: {exc}") from None
    if not head.strip():
        raise CrystalError("empty", f"{path} is empty")
    if b"\x00" in head:
        raise CrystalError("unknown_format", f"{path} is a binary file, not CIF or CSV text")
    text = head.decode("utf-8", errors="replace")
    suffix = path.suffix.lower() if not compressed else Path(path.stem).suffix.lower()
    if suffix == ".csv" or (suffix not in _CIF_SUFFIXES and _looks_like_csv(text)):
        kind = "csv"
    elif _DATA_LINE.search(text):
        kind = "cif"
    elif suffix in _CIF_SUFFIXES:
        raise CrystalError("cif_parse", f"{path} has no 'data_' block")
    else:
        raise CrystalError(
            "unknown_format",
            f"cannot tell the format of {path}: expected CIF (data_ blocks) or CSV with a"
            " 'cif' column",
        )
    return _Source(path, compressed, kind, source if source is not None else path.name)


def _looks_like_csv(text: str) -> bool:
    first_line = text.splitlines()[0] if text.strip() else ""
    return "cif" in next(csv.reader([first_line]), [])


# ---- CSV ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _CsvColumns:
    names: tuple[str, ...]
    cif: int
    id: int | None
    numeric: tuple[int, ...]  # columns whose numeric values become properties


def _csv_header(found: _Source) -> _CsvColumns:
    _allow_large_csv_fields()
    with open_text(found.path, found.compressed) as stream:
        header = next(csv.reader(bounded_lines(stream)), [])
    if any(_SURROGATE.search(name) for name in header):
        raise CrystalError("not_utf8", f"the header of {found.path} is not valid UTF-8")
    if "cif" not in header:
        raise CrystalError(
            "missing_column", f"{found.path} has no 'cif' column (columns: {', '.join(header)})"
        )
    id_column = next((header.index(name) for name in _ID_COLUMNS if name in header), None)
    skipped = {header.index("cif"), id_column}
    numeric = tuple(
        i
        for i, name in enumerate(header)
        if i not in skipped and name and not name.startswith(("Unnamed", "cif"))
    )
    return _CsvColumns(tuple(header), header.index("cif"), id_column, numeric)


def _allow_large_csv_fields() -> None:
    """CIFs in CSV fields can exceed the csv module's 128 KiB default (a process-wide setting)."""
    if csv.field_size_limit() < _MAX_CSV_FIELD:
        csv.field_size_limit(_MAX_CSV_FIELD)


def csv_rows(text: str) -> list[str] | None:
    """Each non-empty row of CSV `text` re-serialised as its own text (ending in a newline), the
    header first; None when the text is not CSV. Bytes kept by `surrogateescape` pass unchanged."""
    _allow_large_csv_fields()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    rows = []
    try:
        for row in csv.reader(io.StringIO(text, newline="")):
            if row:
                writer.writerow(row)
                rows.append(out.getvalue())
                out.seek(0)
                out.truncate()
    except csv.Error:
        return None
    return rows


def _csv_records(
    found: _Source, columns: _CsvColumns, limits: ValidationLimits
) -> Iterator[Record]:
    index = 0
    with open_text(found.path, found.compressed) as stream:
        reader = csv.reader(bounded_lines(stream))
        try:
            next(reader, None)
            for row in reader:
                if row:
                    yield _csv_record(index, row, columns, found.name, limits)
                    index += 1
        except (CrystalError, csv.Error, OSError, EOFError, zlib.error) as exc:
            code, reason = _code_and_reason(exc, "csv_format")
            message = f"line {reader.line_num} of {found.path} cannot be read: {reason}"
            yield Record(index, str(index), None, f"{code}: {message}")


def _csv_record(
    index: int, row: list[str], columns: _CsvColumns, source: str, limits: ValidationLimits
) -> Record:
    key = str(index)
    try:
        if len(row) != len(columns.names):
            raise CrystalError(
                "csv_format", f"the row has {len(row)} fields, the header {len(columns.names)}"
            )
        key = row[columns.id] if columns.id is not None else key
        if any(_SURROGATE.search(value) for value in row):
            raise CrystalError("not_utf8", "the row contains bytes that are not valid UTF-8")
        meta = {
            "id": key if columns.id is not None else "",
            "properties": _numeric(row, columns),
            "provenance": Provenance(source=source, record=key),
        }
        return Record(index, key, _single_block_crystal(row[columns.cif], limits, meta))
    except CrystalError as exc:
        return Record(index, key, None, str(exc))
    except Exception as exc:  # a bad record must never stop the stream
        return Record(index, key, None, f"cif_parse: unexpected {type(exc).__name__}: {exc}")


def _numeric(row: list[str], columns: _CsvColumns) -> dict[str, float]:
    out = {}
    for i in columns.numeric:
        try:
            value = float(row[i])
        except ValueError:
            continue
        if value == value and abs(value) != float("inf"):
            out[columns.names[i]] = value
    return out


def _single_block_crystal(text: str, limits: ValidationLimits, meta: dict) -> Crystal:
    if not text.strip():
        raise CrystalError("empty", "the cif field is empty")
    blocks = list(split_cif_blocks(text.splitlines(keepends=True)))
    if len(blocks) != 1:
        raise CrystalError("multiple_structures", f"the cif field has {len(blocks)} data blocks")
    return crystal_from_cif_block(blocks[0][1], limits, meta)


# ---- CIF ------------------------------------------------------------------------------------
def _cif_records(
    found: _Source, limits: ValidationLimits, on_skipped: Callable[[Record], None]
) -> Iterator[Record]:
    """The blocks' records; blocks without a structure are held back until the file shows
    whether any block has one (then they are skipped), see `read_records`."""
    held: list[Record] = []
    structure_seen = False
    for record in _cif_blocks(found, limits):
        if record.code != "no_structure":
            structure_seen = True
            for skipped in held:
                on_skipped(skipped)
            held.clear()
            yield record
        elif structure_seen:
            on_skipped(record)
        else:
            held.append(record)
    yield from held


def _cif_blocks(found: _Source, limits: ValidationLimits) -> Iterator[Record]:
    index = 0
    with open_text(found.path, found.compressed) as stream:
        try:
            lines = bounded_lines(stream)
            for line, text in split_cif_blocks(lines, max_chars=MAX_BLOCK_CHARS):
                yield _cif_record(index, line, text, found.name, limits)
                index += 1
        except (CrystalError, OSError, EOFError, zlib.error) as exc:
            code, reason = _code_and_reason(exc, "cif_parse")
            yield Record(index, str(index), None, f"{code}: {found.path} cannot be read: {reason}")


def _code_and_reason(exc: Exception, default_code: str) -> tuple[str, str]:
    """The error code and message of an exception that ended a file's stream."""
    if isinstance(exc, CrystalError):
        return exc.code, exc.message
    return default_code, str(exc)


def _cif_record(index: int, line: int, text: str, source: str, limits: ValidationLimits) -> Record:
    match = _DATA_LINE.search(text)
    key = match.group(1) if match and match.group(1) else str(index)
    try:
        bad = _SURROGATE.search(text)
        if bad:
            line += text[: bad.start()].count("\n")
            raise CrystalError("not_utf8", f"line {line} contains bytes that are not valid UTF-8")
        meta = {"provenance": Provenance(source=source, record=key)}
        return Record(index, key, crystal_from_cif_block(text, limits, meta))
    except CrystalError as exc:
        return Record(index, key, None, str(exc))
    except Exception as exc:  # a bad record must never stop the stream
        return Record(index, key, None, f"cif_parse: unexpected {type(exc).__name__}: {exc}")
