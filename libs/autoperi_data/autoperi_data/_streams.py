"""Crystal files as bounded text streams: what a hostile file (a gzip bomb, one endless line,
one endless CIF block) can make the readers hold or decompress is bounded.

Bounds (CrystalError "too_large" when crossed, raised while reading):
  - a gzip file decompresses to at most max(`GZIP_MIN_BYTES`, `GZIP_MAX_RATIO` x its size);
    CIF and CSV text compresses 4-10 fold, deflate at most ~1030 fold;
  - a physical line holds at most `MAX_LINE_CHARS` characters (CIF allows 2048; a CSV field
    holding a CIF spans many lines);
  - a CIF data block holds at most `MAX_BLOCK_CHARS` characters (a block of 1,000 atoms is
    ~50 kB; journal blocks with embedded reflection data a few MB).
"""

import gzip
import io
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from xtal import CrystalError

GZIP_MAX_RATIO = 100
GZIP_MIN_BYTES = 64 << 20
MAX_LINE_CHARS = 1 << 20
MAX_BLOCK_CHARS = 64 << 20


def gzip_limit(compressed_bytes: int) -> int:
    """The most bytes a gzip file of `compressed_bytes` may decompress to."""
    return max(GZIP_MIN_BYTES, GZIP_MAX_RATIO * compressed_bytes)


def gunzip_bounded(data: bytes, name: str) -> bytes:
    """The decompressed bytes of gzip data (every member); CrystalError "too_large" past
    `gzip_limit(len(data))`, zlib.error / EOFError for corrupt or cut data."""
    limit, out = gzip_limit(len(data)), bytearray()
    while data:
        inflate = zlib.decompressobj(wbits=31)
        out += inflate.decompress(data, limit + 1 - len(out))
        if len(out) > limit:
            raise _too_large(name, limit)
        if not inflate.eof:
            raise EOFError(f"{name}: gzip data cut short")
        data = inflate.unused_data
    return bytes(out)


def _too_large(name: object, limit: int) -> CrystalError:
    return CrystalError(
        "too_large",
        f"{name} decompresses to more than {limit} bytes"
        f" ({GZIP_MAX_RATIO} times its size or {GZIP_MIN_BYTES >> 20} MiB): a gzip bomb?",
    )


class _Capped(io.RawIOBase):
    """A readable raw stream that raises CrystalError("too_large") past `limit` bytes."""

    def __init__(self, inner: IO[bytes], limit: int, path: Path) -> None:
        self._inner, self._limit, self._path, self._count = inner, limit, path, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = self._inner.readinto(buffer)
        self._count += count
        if self._count > self._limit:
            raise _too_large(self._path, self._limit)
        return count

    def close(self) -> None:
        self._inner.close()
        super().close()


def open_text(path: Path, compressed: bool) -> IO[str]:
    """The file as UTF-8 text (BOM dropped, undecodable bytes kept as surrogate escapes, line
    endings as they are); a compressed file is capped as the module docstring says."""
    if compressed:
        limit = gzip_limit(path.stat().st_size)
        inner = gzip.open(path, "rb")  # noqa: SIM115 - closed with the returned stream
        raw = io.BufferedReader(_Capped(inner, limit, path))
    else:
        raw = open(path, "rb")  # noqa: SIM115 - closed with the returned stream
    return io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="")


def bounded_lines(stream: IO[str]) -> Iterator[str]:
    """The physical lines of `stream` (with their endings); CrystalError("too_large") for a
    line over `MAX_LINE_CHARS` characters, raised before it is read whole."""
    number = 0
    while line := stream.readline(MAX_LINE_CHARS + 1):
        number += 1
        if len(line) > MAX_LINE_CHARS and not line.endswith(("\n", "\r")):
            raise CrystalError(
                "too_large", f"line {number} is longer than {MAX_LINE_CHARS} characters"
            )
        yield line
