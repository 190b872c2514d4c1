"""Client helpers: turn files into Ingest request streams (chunked at record boundaries)."""

import contextlib
import zlib
from collections.abc import Iterator
from pathlib import Path

from autoperi.ingest.v1 import ingest_pb2
from autoperi_data import csv_rows, gunzip_bounded


def read_bytes(path: str | Path) -> bytes:
    """A file's bytes, gunzipped when gzip-compressed (a corrupt gzip file is sent as it is:
    the server reports it). CrystalError "too_large" for a gzip file that decompresses past
    the readers' bound (a gzip bomb), before anything is sent."""
    data = Path(path).read_bytes()
    if data[:2] == b"\x1f\x8b":
        with contextlib.suppress(OSError, EOFError, zlib.error):
            data = gunzip_bounded(data, Path(path).name)
    return data


def csv_requests(path: str | Path, rows_per_chunk: int = 500) -> Iterator[ingest_pb2.IngestRequest]:
    """CsvChunk messages of at most `rows_per_chunk` rows, each with the header line, carrying
    the file's bytes (`raw`): the server rejects only the rows that are not UTF-8."""
    # surrogateescape keeps bytes that are not UTF-8 through the csv module unchanged
    text, name = read_bytes(path).decode("utf-8", errors="surrogateescape"), Path(path).name
    rows = csv_rows(text) or []
    if len(rows) < 2:
        yield _csv_chunk(name, text, 0)
        return
    for start in range(1, len(rows), rows_per_chunk):
        yield _csv_chunk(name, "".join([rows[0], *rows[start : start + rows_per_chunk]]), start - 1)


def _csv_chunk(name: str, text: str, first_row: int) -> ingest_pb2.IngestRequest:
    raw = text.encode("utf-8", errors="surrogateescape")
    return ingest_pb2.IngestRequest(
        csv=ingest_pb2.CsvChunk(file_name=name, raw=raw, first_row=first_row)
    )


def cif_requests(path: str | Path) -> Iterator[ingest_pb2.IngestRequest]:
    """One CifChunk with the whole file's bytes (the server decodes and batches its blocks)."""
    chunk = ingest_pb2.CifChunk(file_name=Path(path).name, raw=read_bytes(path))
    yield ingest_pb2.IngestRequest(cif=chunk)


def file_requests(
    path: str | Path, rows_per_chunk: int = 500
) -> Iterator[ingest_pb2.IngestRequest]:
    """CSV chunks for '.csv' / '.csv.gz' files, a CIF chunk otherwise."""
    name = Path(path).name.lower()
    if name.endswith((".csv", ".csv.gz")):
        return csv_requests(path, rows_per_chunk)
    return cif_requests(path)


def header_request(dataset: str, **fields) -> ingest_pb2.IngestRequest:
    """The first message of an Ingest stream (fields of IngestHeader)."""
    return ingest_pb2.IngestRequest(header=ingest_pb2.IngestHeader(dataset=dataset, **fields))
