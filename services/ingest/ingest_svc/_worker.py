"""The sandboxed parser process: untrusted CIF/CSV text and proto crystals in, checked crystals out.

Run as `__main__` by the sandbox bootstrap (`ingest_svc._isolation`: empty environment, scratch
directory, no network, memory limit); the parent (`ingest_svc._sandbox`) kills it on timeout.
Protocol on stdin/stdout, one frame per batch: a 4-byte big-endian length
then a JSON object. Request: {"kind": "cif" | "csv" | "proto", "file_name", "text" (cif/csv),
"crystals" (proto: base64 `crystal_pb2.Crystal` bytes), "first_index", "source"}. Reply:
{"records": [{"index", "key", "error", "hash", "crystal"}]} where `crystal` is the
base64 canonical `crystal_pb2.Crystal` (content_hash and provenance set) of an accepted record and
`error` is "<code>: <message>" of a rejected one. A started worker first writes {"ready": true}.
The worker only parses: it writes nothing.
"""

import base64
import dataclasses
import json
import struct
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from autoperi_data import Record, read_records
from xtal import Crystal, CrystalError, Provenance
from xtal.convert import from_proto, to_proto

_LENGTH = struct.Struct(">I")


def read_frame(stream: BinaryIO) -> dict[str, Any] | None:
    """The next JSON frame of `stream`, or None at its end."""
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        return None
    (size,) = _LENGTH.unpack(head)
    return json.loads(stream.read(size))


def write_frame(stream: BinaryIO, obj: dict[str, Any]) -> None:
    """Write `obj` as one length-prefixed JSON frame and flush."""
    data = json.dumps(obj).encode()
    stream.write(_LENGTH.pack(len(data)) + data)
    stream.flush()


def handle(request: dict[str, Any]) -> dict[str, Any]:
    """Parse, validate and canonicalise one batch; every record gets a reply entry."""
    kind = request["kind"]
    records = _proto_records(request) if kind == "proto" else _text_records(request)
    return {"records": [_reply(record, request) for record in records]}


def _text_records(request: dict[str, Any]) -> Iterator[Record]:
    name = request["file_name"]
    with tempfile.TemporaryDirectory(prefix="ingest-") as tmp:
        path = Path(tmp) / f"chunk{_suffix(request['kind'], name)}"
        path.write_bytes(request["text"].encode("utf-8", errors="surrogateescape"))
        try:
            for record in read_records(path, source=request.get("source") or name):
                yield _renamed(record, str(path), name)
        except CrystalError as exc:  # the chunk as a whole is unreadable
            yield Record(-1, "", None, str(exc).replace(str(path), name or "the chunk"))


def _suffix(kind: str, file_name: str) -> str:
    """The temporary file's suffix: the reader sniffs the format of names it does not know."""
    if kind == "csv":
        return ".csv"
    return ".cif" if file_name.lower().endswith((".cif", ".mcif")) else ".txt"


def _renamed(record: Record, path: str, name: str) -> Record:
    """The record with the temporary path in its message replaced by the client's file name."""
    if record.error is None or path not in record.error:
        return record
    return Record(record.index, record.key, None, record.error.replace(path, name or "the chunk"))


def _proto_records(request: dict[str, Any]) -> Iterator[Record]:
    from autoperi.crystal.v1 import crystal_pb2

    for index, data in enumerate(request["crystals"]):
        message = crystal_pb2.Crystal()
        try:
            message.ParseFromString(base64.b64decode(data))
            crystal = from_proto(message).validate()
        except CrystalError as exc:
            yield Record(index, message.id, None, str(exc))
            continue
        except Exception as exc:  # a malformed message is one bad record
            yield Record(index, message.id, None, f"shape: {type(exc).__name__}: {exc}")
            continue
        if not crystal.provenance.source:
            crystal = crystal.replace(
                provenance=_with(crystal.provenance, source=request.get("source", ""))
            )
        yield Record(index, crystal.id, crystal)


def _with(provenance: Provenance, **fields: str) -> Provenance:
    return dataclasses.replace(provenance, **fields)


def _reply(record: Record, request: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "index": record.index if record.index < 0 else record.index + request["first_index"],
        "key": record.key,
        "error": record.error,
        "hash": None,
        "crystal": None,
    }
    if record.crystal is None:
        return entry
    try:
        crystal: Crystal = record.crystal.canonical()
        message = to_proto(crystal, include_hash=True)
    except CrystalError as exc:
        entry["error"] = str(exc)
        return entry
    except Exception as exc:  # canonicalisation failure is a bad record, not a worker crash
        entry["error"] = f"shape: canonicalisation failed: {type(exc).__name__}: {exc}"
        return entry
    entry["hash"] = message.content_hash
    entry["crystal"] = base64.b64encode(message.SerializeToString(deterministic=True)).decode()
    return entry


def main() -> None:
    """Serve batches until stdin closes."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # stray prints of libraries must not corrupt the protocol
    write_frame(stdout, {"ready": True})  # imports done: batch time limits start now
    while (request := read_frame(stdin)) is not None:
        write_frame(stdout, handle(request))


if __name__ == "__main__":
    main()
