"""A round's candidates: the sampler's `crystal.v1.Crystal` messages, kept as they came.

The messages are what the round stores (`round-<k>/candidates.pb`, one `CrystalBatch`) and what
it sends to the scorer and the ingest, unchanged; the Python logic (formulas, content hashes,
fingerprints) reads them as `xtal.Crystal`s, each converted on first use and only once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from autoperi.crystal.v1 import crystal_pb2
from xtal import Crystal, convert

FILE_NAME = "candidates.pb"


class Candidates(Sequence[Crystal]):
    """Read-only: `messages` (the sampler's, in order) and, as a sequence, their Crystals."""

    def __init__(self, messages: Iterable[crystal_pb2.Crystal]) -> None:
        self.messages: tuple[crystal_pb2.Crystal, ...] = tuple(messages)
        self._crystals: list[Crystal | None] = [None] * len(self.messages)

    @classmethod
    def read(cls, path: Path) -> Candidates:
        """The candidates of a file `write` wrote."""
        return cls(crystal_pb2.CrystalBatch.FromString(Path(path).read_bytes()).crystals)

    def write(self, path: Path) -> None:
        """Store the messages as one `CrystalBatch`, atomically (a crash leaves no partial file)."""
        batch = crystal_pb2.CrystalBatch(crystals=self.messages)
        write_atomic(Path(path), batch.SerializeToString())

    def chosen(self, indices: Iterable[int]) -> list[crystal_pb2.Crystal]:
        """The messages at `indices`, in that order."""
        return [self.messages[i] for i in indices]

    def __len__(self) -> int:
        return len(self.messages)

    def __getitem__(self, index: int | slice) -> Crystal | list[Crystal]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        crystal = self._crystals[index]
        if crystal is None:
            crystal = self._crystals[index] = convert.from_proto(self.messages[index])
        return crystal


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file and a rename."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
