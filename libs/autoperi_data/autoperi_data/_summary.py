"""Summaries of record streams and the load-throughput measurement used by the CLI."""

import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from xtal import ValidationLimits

from autoperi_data._readers import Record, read_records


@dataclass(frozen=True)
class RecordSummary:
    """Counts of a record stream: accepted, rejected, and rejections per CrystalError code
    (`reasons`, most frequent first) with the first full message of each (`examples`)."""

    total: int = 0
    accepted: int = 0
    rejected: int = 0
    reasons: Mapping[str, int] = field(default_factory=dict)
    examples: Mapping[str, str] = field(default_factory=dict)


def summarize_records(records: Iterable[Record]) -> RecordSummary:
    """Consume `records` and count them."""
    reasons: Counter[str] = Counter()
    examples: dict[str, str] = {}
    total = 0
    for record in records:
        total += 1
        if record.error is not None:
            reasons[record.code] += 1
            examples.setdefault(record.code, f"{record.key}: {record.error}")
    rejected = sum(reasons.values())
    return RecordSummary(total, total - rejected, rejected, dict(reasons.most_common()), examples)


@dataclass(frozen=True)
class LoadStats:
    """Outcome and wall time of `load_split_stats`."""

    path: str
    summary: RecordSummary
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return self.summary.total / self.seconds if self.seconds > 0 else float("inf")


def load_split_stats(
    path: str | Path,
    *,
    limits: ValidationLimits | None = None,
    canonicalize: bool = True,
    content_hash: bool = False,
) -> LoadStats:
    """Read, validate and (by default) canonicalise every record of a file, timing the whole.

    With `content_hash`, each accepted crystal's content hash is computed too.
    """
    start = time.perf_counter()
    summary = summarize_records(
        _processed(read_records(path, limits=limits), canonicalize, content_hash)
    )
    return LoadStats(str(path), summary, time.perf_counter() - start)


def _processed(records: Iterable[Record], canonicalize: bool, content_hash: bool):
    for record in records:
        if record.crystal is not None:
            crystal = record.crystal.canonical() if canonicalize else record.crystal
            if content_hash:
                crystal.content_hash()
        yield record
