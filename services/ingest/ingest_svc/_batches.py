"""Cut chunks of text or proto crystals into parser batches of at most `size` records.

Splitting only finds record boundaries (CSV rows with the dataset contract's `csv_rows`, CIF
`data_` lines); parsing
the records is left to the sandboxed worker. A chunk whose boundaries cannot be found is sent
whole, and the worker reports what is wrong with it.
"""

import base64
import re
from collections.abc import Sequence
from typing import Any

from autoperi_data import csv_rows

_DATA_LINE = re.compile(r"^\s*data_(\S*)", re.IGNORECASE)

Batch = tuple[dict[str, Any], int]  # (worker request, records in it)


def csv_batches(file_name: str, text: str, first_row: int, size: int, source: str) -> list[Batch]:
    """Batches of CSV rows, each repeating the header line; rows keep their file-wide index."""
    base = {"kind": "csv", "file_name": file_name, "source": source or file_name}
    rows = csv_rows(text)
    if rows is None or len(rows) < 2:
        return [
            ({**base, "text": text, "header": "", "units": [text], "first_index": first_row}, 1)
        ]
    header, body = rows[0], rows[1:]
    batches = []
    for start in range(0, len(body), size):
        units = body[start : start + size]
        request = {**base, "header": header, "units": units, "first_index": first_row + start}
        batches.append(({**request, "text": header + "".join(units)}, len(units)))
    return batches


def cif_batches(file_name: str, text: str, size: int, source: str) -> list[Batch]:
    """Batches of whole CIF data blocks (text before the first block goes with it)."""
    base = {"kind": "cif", "file_name": file_name, "source": source or file_name, "header": ""}
    blocks, names = _cif_blocks(text)
    if not blocks:
        return [({**base, "text": text, "units": [text], "unit_keys": [""], "first_index": 0}, 1)]
    batches = []
    for start in range(0, len(blocks), size):
        units, keys = blocks[start : start + size], names[start : start + size]
        request = {**base, "units": units, "unit_keys": keys, "first_index": start}
        batches.append(({**request, "text": "".join(units)}, len(units)))
    return batches


def _cif_blocks(text: str) -> tuple[list[str], list[str]]:
    blocks: list[list[str]] = []
    names: list[str] = []
    preamble: list[str] = []
    for line in text.splitlines(keepends=True):
        match = _DATA_LINE.match(line)
        if match:
            blocks.append([*preamble, line] if not blocks else [line])
            names.append(match.group(1) or str(len(names)))
            preamble = []
        elif blocks:
            blocks[-1].append(line)
        else:
            preamble.append(line)
    return ["".join(b) for b in blocks], names


def proto_batches(
    crystals: Sequence[bytes], first_index: int, size: int, source: str
) -> list[Batch]:
    """Batches of serialised `crystal_pb2.Crystal` messages; indices count within the stream."""
    encoded = [base64.b64encode(data).decode() for data in crystals]
    batches = []
    for start in range(0, len(encoded), size):
        units = encoded[start : start + size]
        request = {
            "kind": "proto",
            "file_name": "",
            "source": source,
            "header": "",
            "units": units,
            "crystals": units,
            "first_index": first_index + start,
        }
        batches.append((request, len(units)))
    return batches
