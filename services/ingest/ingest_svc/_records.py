"""The parsers' reply entries of one ingest -> rejections (bounded) and valid records by key.

Every rejection is bounded field by field (`Rejection.bounded`), and the rejections a reply lists
are bounded in number and in bytes (`listed`), so an IngestResponse stays far below gRPC's
default 4 MiB message limit whatever the records held.
"""

import base64
import re
from dataclasses import dataclass
from typing import Any

from autoperi_data import crystal_key

from ingest_svc._model import Rejection

_SURROGATES = re.compile("[\ud800-\udfff]")
_ENTRY_OVERHEAD = 16  # bytes of proto framing per listed RejectedRecord (tags and lengths)


@dataclass(frozen=True)
class Parsed:
    """One parser batch: its kind ("cif" | "csv" | "proto"), file name and reply entries."""

    kind: str
    file_name: str
    entries: list[dict[str, Any]]


def sort_entries(parsed: list[Parsed]) -> tuple[list[Rejection], dict[str, list[bytes]]]:
    """Rejections in stream order, and valid records by tree key (first occurrence first)."""
    rejections: list[Rejection] = []
    valid: dict[str, list[bytes]] = {}
    for batch in parsed:
        for entry in batch.entries:
            key = _record_key(batch, entry)
            if entry["error"] is not None:
                code, _, message = _printable(entry["error"]).partition(": ")
                rejections.append(Rejection.bounded(_printable(key), code, message or code))
                continue
            blob = base64.b64decode(entry["crystal"])
            valid.setdefault(crystal_key(entry["hash"]), []).append(blob)
    return rejections, valid


def listed(rejections: list[Rejection], max_count: int, max_bytes: int) -> tuple[Rejection, ...]:
    """The first rejections, at most `max_count` of them and at most `max_bytes` of them as
    RejectedRecord messages (UTF-8 text plus framing)."""
    chosen: list[Rejection] = []
    size = 0
    for rejection in rejections[:max_count]:
        size += _encoded_size(rejection)
        if size > max_bytes:
            break
        chosen.append(rejection)
    return tuple(chosen)


def _encoded_size(rejection: Rejection) -> int:
    text = rejection.record_key + rejection.code + rejection.message
    return len(text.encode("utf-8")) + _ENTRY_OVERHEAD


def _printable(text: str) -> str:
    """`text` with the surrogate escapes of bytes that were not UTF-8 (block names, row ids of
    raw chunks) shown as U+FFFD, so it fits a proto string."""
    return _SURROGATES.sub("\ufffd", text)


def _record_key(batch: Parsed, entry: dict[str, Any]) -> str:
    index, key = entry["index"], entry["key"]
    if batch.kind == "csv":
        return batch.file_name if index < 0 else f"{batch.file_name}:{index}"
    if batch.kind == "cif":
        return batch.file_name if index < 0 else f"{batch.file_name}#{key or index}"
    return key or str(index)
