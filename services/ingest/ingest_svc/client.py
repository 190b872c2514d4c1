"""Client helpers: turn files into Ingest request streams (chunked at record boundaries)."""

import contextlib
import csv
import gzip
import io
import zlib
from collections.abc import Iterator
from pathlib import Path

from autoperi.ingest.v1 import ingest_pb2

_MAX_CSV_FIELD = 1 << 30


def read_text(path: str | Path) -> str:
    """A file's text (gunzipped when gzip-compressed); undecodable bytes become U+FFFD, since
    proto strings must be UTF-8."""
    data = Path(path).read_bytes()
    if data[:2] == b"\x1f\x8b":
        with contextlib.suppress(
            OSError, EOFError, zlib.error
        ):  # else sent as it is: the server reports it
            data = gzip.decompress(data)
    return data.decode("utf-8", errors="replace")


def csv_requests(path: str | Path, rows_per_chunk: int = 500) -> Iterator[ingest_pb2.IngestRequest]:
    """CsvChunk messages of at most `rows_per_chunk` rows, each with the header line."""
    text, name = read_text(path), Path(path).name
    if csv.field_size_limit() < _MAX_CSV_FIELD:
        csv.field_size_limit(_MAX_CSV_FIELD)
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error:
        yield ingest_pb2.IngestRequest(csv=ingest_pb2.CsvChunk(file_name=name, text=text))
        return
    if len(rows) < 2:
        yield ingest_pb2.IngestRequest(csv=ingest_pb2.CsvChunk(file_name=name, text=text))
        return
    rows = [r for r in rows if r]
    for start in range(1, len(rows), rows_per_chunk):
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(
            [rows[0], *rows[start : start + rows_per_chunk]]
        )
        chunk = ingest_pb2.CsvChunk(file_name=name, text=out.getvalue(), first_row=start - 1)
        yield ingest_pb2.IngestRequest(csv=chunk)


def cif_requests(path: str | Path) -> Iterator[ingest_pb2.IngestRequest]:
    """One CifChunk with the whole file (the server batches its blocks)."""
    chunk = ingest_pb2.CifChunk(file_name=Path(path).name, text=read_text(path))
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
