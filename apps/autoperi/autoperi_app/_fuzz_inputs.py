"""Seeded mutations of real CIF files: what the fuzzer feeds the reader and the ingest service.

`FuzzCorpus.load(dirs)` reads the seed files (every `*.cif` of each directory, sorted by name).
`corpus.input(seed, stream, index)` is input `index` of a named stream: a seed file (a directory
picked uniformly, then a file of it) mutated 1 to 4 times (1 most often) by a `random.Random`
seeded with (seed, stream, index) alone, so an input is rebuilt from those three values (a report
names them) and never needs storing. Mutations act on bytes, as an
upload does: byte flips, truncation, duplicated / removed / swapped lines, huge and non-finite
numbers, unicode and invalid UTF-8, loop corruption, symmetry-operation garbage, stray quotes and
text fields, lines spliced from another seed, whole files concatenated, line endings, and (last,
rarely) gzip compression, whole or truncated. An input never exceeds `MAX_INPUT_BYTES`.
"""

from __future__ import annotations

import gzip
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_INPUT_BYTES = 2 << 20
GZIP_PROBABILITY = 0.03
_MUTATION_COUNTS = (1, 1, 1, 2, 2, 3, 4)  # mutations per input, drawn uniformly from these

_NUMBER = re.compile(rb"[-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?")
_SYMOP_LINE = re.compile(rb"^([ \t]*\d*[ \t]*)(['\"])([^'\"\n]*)\2\s*$")  # "  2  '-x, y, z'"
_SYMOP_LINE_CHARS = 400  # longer lines are not looked at as symmetry operations
_HUGE = (
    b"1e308", b"-1e308", b"1e999", b"-1e999", b"nan", b"NaN", b"inf", b"-inf", b"1e-320",
    b"0", b"-0", b"?", b".", b"1.5(3)", b"0x1p1023", b"1_000", b"1e+", b"-2147483649", b"4.0e-7",
    b"123456789012345678901234567890", b"9" * 400, b"9" * 2000, b"1" + b"0" * 5000,
)  # fmt: skip
_UNICODE = (
    "é", "\u00a0", "\ufeff", "\u202e", "\u200b", "\u0000", "\u0007", "😀", "Ω", "\u0301",
    "\u2028", "ﬁ", "Ｘ", "\x1b[31m",
)  # fmt: skip
_BAD_BYTES = (b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x80\x80", b"\xf4\x90\x80\x80", b"\x00")
_SYMOP_GARBAGE = (
    b"x, y", b"x, y, z, w", b"a, b, c", b"x+y+z,,", b"1/0+x, y, z", b"x*2, y, z", b"x/0, y, z",
    b"-x+1e308, y, z", b"x, y, z+1/3+1/3+1/3+1/3", b"", b"''", b"x, y, q", b"(x, y, z)",
    b"x" + b"+x" * 500 + b", y, z", b"z, x, y", b"-y, x-y, z+2/3", b"x+0.5.5, y, z",
    b"x, y, z" * 50, b"\xff\xfe, y, z", b"X, Y, Z",
)  # fmt: skip
_QUOTES = (b"'", b'"', b";", b";\n", b"'unterminated\n", b"loop_\n", b"data_\n", b"#", b"_\n")


@dataclass(frozen=True)
class FuzzInput:
    """One fuzz input: the seed file's name, the mutations applied (in order) and the bytes."""

    seed_file: str
    mutations: tuple[str, ...]
    data: bytes

    @property
    def suffix(self) -> str:
        """'.cif.gz' for gzip-compressed bytes, '.cif' otherwise (what a file would be named)."""
        return ".cif.gz" if self.data[:2] == b"\x1f\x8b" else ".cif"


@dataclass(frozen=True)
class FuzzCorpus:
    """The seed files (name, bytes) that inputs are mutated from, one group per directory."""

    groups: tuple[tuple[tuple[str, bytes], ...], ...]

    @classmethod
    def load(cls, dirs: Sequence[Path]) -> FuzzCorpus:
        """The `*.cif` files of each of `dirs` (ValueError for a directory without one)."""
        groups = []
        for directory in dirs:
            paths = sorted(Path(directory).glob("*.cif"))
            if not paths:
                raise ValueError(f"no *.cif seed files in {directory}")
            groups.append(tuple((p.name, p.read_bytes()) for p in paths))
        return cls(tuple(groups))

    @property
    def seeds(self) -> tuple[tuple[str, bytes], ...]:
        """Every seed file, all groups together."""
        return tuple(seed for group in self.groups for seed in group)

    def input(self, seed: int, stream: str, index: int) -> FuzzInput:
        """Input `index` of `stream` (deterministic in seed, stream and index)."""
        rng = random.Random(f"{seed}/{stream}/{index}")
        name, data = rng.choice(rng.choice(self.groups))
        names = rng.choices(list(MUTATIONS), k=rng.choice(_MUTATION_COUNTS))
        for mutation in names:
            data = MUTATIONS[mutation](rng, data, self)[:MAX_INPUT_BYTES]
        if rng.random() < GZIP_PROBABILITY:
            data, names = _gzip(rng, data), [*names, "gzip"]
        return FuzzInput(name, tuple(names), data)


@dataclass(frozen=True)
class InputRef:
    """Where an input comes from: `FuzzCorpus.input(seed, stream, index)`."""

    seed: int
    stream: str
    index: int

    def of(self, corpus: FuzzCorpus) -> FuzzInput:
        """The input itself, rebuilt."""
        return corpus.input(self.seed, self.stream, self.index)


def save_finding(out_dir: Path, kind: str, ref: InputRef, item: FuzzInput, detail: str) -> dict:
    """Write the input of a finding to `out_dir` as `<kind>-<stream>-<seed>-<index><suffix>`;
    the finding as a JSON-ready dict (kind, where the input comes from, detail, saved path)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{kind}-{ref.stream}-{ref.seed}-{ref.index}{item.suffix}"
    path.write_bytes(item.data)
    where: dict[str, Any] = {"seed": ref.seed, "stream": ref.stream, "index": ref.index}
    return {
        "kind": kind,
        **where,
        "seed_file": item.seed_file,
        "mutations": list(item.mutations),
        "detail": detail[:500],
        "saved": str(path),
    }


Mutation = Callable[[random.Random, bytes, FuzzCorpus], bytes]


def _lines(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True) or [b""]


def _copies(wanted: int, unit: int) -> int:
    """`wanted` copies of `unit` bytes, fewer if they would pass MAX_INPUT_BYTES (at least 1)."""
    return max(1, min(wanted, MAX_INPUT_BYTES // max(1, unit)))


def _byte_flip(rng: random.Random, data: bytes, _: FuzzCorpus) -> bytes:
    out = bytearray(data or b"\n")
    for _ in range(rng.randint(1, 8)):
        at = rng.randrange(len(out))
        out[at] = out[at] ^ (1 << rng.randrange(8)) if rng.random() < 0.5 else rng.randrange(256)
    return bytes(out)


def _truncate(rng: random.Random, data: bytes, _: FuzzCorpus) -> bytes:
    return data[: rng.randrange(len(data) + 1)]


def _duplicate_lines(rng: random.Random, data: bytes, _: FuzzCorpus) -> bytes:
    lines = _lines(data)
    at = rng.randrange(len(lines))
    lines[at:at] = [lines[at]] * _copies(rng.choice((1, 2, 10, 500)), len(lines[at]))
    return b"".join(lines)


def _remove_lines(rng: random.Random, data: bytes, _: FuzzCorpus) -> bytes:
    lines = _lines(data)
    for _ in range(min(rng.randint(1, 3), len(lines))):
        del lines[rng.randrange(len(lines))]
    return b"".join(lines)


def _swap_lines(rng: random.Random, data: bytes, _: FuzzCorpus) -> bytes:
    lines = _lines(data)
    i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
    lines[i], lines[j] = lines[j], lines[i]
    return b"".join(lines)


def _huge_number(rng: random.Random, data: bytes, _: FuzzCorpus) -> bytes:
    """One number (or, one time in four, every copy of it) replaced by an extreme value."""
    numbers = list(_NUMBER.finditer(data))
    if not numbers:
        return data + rng.choice(_HUGE)
    match, value = rng.choice(numbers), rng.choice(_HUGE)
    if rng.random() < 0.25:
        every = rb"(?<![\w.])" + re.escape(match.group()) + rb"(?![\w.])"
        return re.sub(every, value, data, count=_copies(len(numbers), len(value)))
    return data[: match.start()] + value + data[match.end() :]


def _unicode(rng: random.Random, data: bytes, _: FuzzCorpus) -> bytes:
    """A unicode character (UTF-8) or bytes that are not UTF-8, at a random place."""
    at = rng.randrange(len(data) + 1)
    snippet = rng.choice(_UNICODE).encode() if rng.random() < 0.6 else rng.choice(_BAD_BYTES)
    return data[:at] + snippet * _copies(rng.choice((1, 1, 3, 1000)), len(snippet)) + data[at:]


def _loop_corruption(rng: random.Random, data: bytes, _: FuzzCorpus) -> bytes:
    """A loop's header or rows made inconsistent: a tag or a value removed or added, the
    `loop_` keyword removed, or a new `loop_` started at a random line."""
    lines = _lines(data)
    loops = [i for i, line in enumerate(lines) if line.strip().lower() == b"loop_"]
    at = rng.choice(loops) if loops else rng.randrange(len(lines))
    row = min(at + rng.randint(1, 8), len(lines) - 1)
    action = rng.randrange(5)
    if action == 0:
        del lines[min(at + 1, len(lines) - 1)]
    elif action == 1:
        lines.insert(at + 1, b" _atom_site_fuzz_extra\n")
    elif action == 2:
        lines[row] = b" ".join(lines[row].split()[:-1]) + b"\n"
    elif action == 3:
        lines[row] = lines[row].rstrip(b"\r\n") + b" 0.5 extra\n"
    else:
        lines.insert(rng.randrange(len(lines) + 1), b"loop_\n")
    return b"".join(lines)


def _symop_garbage(rng: random.Random, data: bytes, _: FuzzCorpus) -> bytes:
    """A symmetry operation replaced by garbage, or the operation lines repeated many times."""
    lines = _lines(data)
    ops = [i for i, line in enumerate(lines) if _is_symop_line(line)]
    if not ops:
        block = b"loop_\n _symmetry_equiv_pos_as_xyz\n  'x, y, z'\n"
        return block + b"  '" + rng.choice(_SYMOP_GARBAGE) + b"'\n" + data
    at = rng.choice(ops)
    if rng.random() < 0.3:
        lines[at:at] = [lines[at]] * _copies(rng.choice((2, 50, 300)), len(lines[at]))
    else:
        prefix, quote = _SYMOP_LINE.match(lines[at]).group(1, 2)
        lines[at] = prefix + quote + rng.choice(_SYMOP_GARBAGE) + quote + b"\n"
    return b"".join(lines)


def _is_symop_line(line: bytes) -> bool:
    """A quoted x, y, z expression, perhaps after a number (short lines only: linear time)."""
    if len(line) > _SYMOP_LINE_CHARS:
        return False
    match = _SYMOP_LINE.match(line)
    return match is not None and any(c in match.group(3) for c in b"xyzXYZ")


def _quote_garbage(rng: random.Random, data: bytes, _: FuzzCorpus) -> bytes:
    """A stray quote, semicolon text field, comment, `loop_`, `data_` or bare tag."""
    lines = _lines(data)
    at = rng.randrange(len(lines) + 1)
    lines.insert(at, rng.choice(_QUOTES) + (b"\n" if rng.random() < 0.5 else b""))
    return b"".join(lines)


def _splice(rng: random.Random, data: bytes, corpus: FuzzCorpus) -> bytes:
    """A run of lines from another seed file inserted at a random line."""
    other = _lines(rng.choice(corpus.seeds)[1])
    start = rng.randrange(len(other))
    lines = _lines(data)
    at = rng.randrange(len(lines) + 1)
    lines[at:at] = other[start : start + rng.randint(1, 12)]
    return b"".join(lines)


def _concatenate(rng: random.Random, data: bytes, corpus: FuzzCorpus) -> bytes:
    """Another whole seed file appended (several data blocks in one file)."""
    return data + b"\n" + rng.choice(corpus.seeds)[1]


def _line_endings(rng: random.Random, data: bytes, _: FuzzCorpus) -> bytes:
    return data.replace(b"\n", rng.choice((b"\r\n", b"\r", b"\n\n", b"\t\n", b"\x0b")))


def _gzip(rng: random.Random, data: bytes) -> bytes:
    packed = gzip.compress(data, mtime=0)
    return packed if rng.random() < 0.7 else packed[: rng.randrange(2, len(packed) + 1)]


MUTATIONS: dict[str, Mutation] = {
    "byte_flip": _byte_flip,
    "truncate": _truncate,
    "duplicate_lines": _duplicate_lines,
    "remove_lines": _remove_lines,
    "swap_lines": _swap_lines,
    "huge_number": _huge_number,
    "unicode": _unicode,
    "loop_corruption": _loop_corruption,
    "symop_garbage": _symop_garbage,
    "quote_garbage": _quote_garbage,
    "splice": _splice,
    "concatenate": _concatenate,
    "line_endings": _line_endings,
}
