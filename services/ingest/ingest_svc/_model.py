"""Domain types of the ingest service; dataset names checked against the dataset contract."""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Final

import autoperi_data as layout
from svc_kit import InvalidInput

STAGING_PREFIX = "_staged_"  # hidden branch holding a branch's staged (uncommitted) records
REQUEST_ID_KEY: Final = "ingest_request_id"  # commit metadata: the request that made the commit
MAX_KEY_CHARS: Final = 200  # of a rejection's record key
MAX_CODE_CHARS: Final = 64  # of a rejection's code
MAX_REASON_CHARS: Final = 400  # of a rejection's message
_BRANCH_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,100}$")
_LONG_WORD = re.compile(r"\S{65,}")  # a run of non-space characters worth eliding
_WORD_HEAD, _WORD_TAIL = 24, 8  # characters kept at each end of an elided run


class RejectPolicy(Enum):
    """What a rejected record does to the rest of an ingest."""

    SKIP_RECORD = "skip_record"
    ABORT = "abort"


@dataclass(frozen=True)
class IngestTarget:
    """Where an ingest goes and how (mirrors ingest.v1.IngestHeader)."""

    dataset: str
    branch: str = "main"
    message: str = ""
    create_dataset: bool = False
    create_branch_from: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)
    source: str = ""
    expected_head: str = ""
    dry_run: bool = False
    stage_only: bool = False
    reject_policy: RejectPolicy = RejectPolicy.SKIP_RECORD
    request_id: str = ""


class RequestAbandoned(Exception):
    """The caller gave up on the request (cancelled, or its deadline passed) before anything was
    written; nothing will be."""


@dataclass(frozen=True)
class Rejection:
    """A record that was not accepted: its key, a short code and one sentence.

    Contract: build it with `Rejection.bounded`, which keeps each field within MAX_KEY_CHARS,
    MAX_CODE_CHARS and MAX_REASON_CHARS, so that a reply listing rejections stays small whatever
    the records held (a record may carry a value of megabytes, which its parse error quotes)."""

    record_key: str
    code: str
    message: str

    @classmethod
    def bounded(cls, record_key: str, code: str, message: str) -> "Rejection":
        """A Rejection whose fields are cut to their limits by `elide`."""
        return cls(
            elide(record_key, MAX_KEY_CHARS),
            elide(code, MAX_CODE_CHARS),
            elide(message, MAX_REASON_CHARS),
        )


@dataclass(frozen=True)
class IngestResult:
    """The outcome of one ingest (mirrors ingest.v1.IngestResponse)."""

    dataset: str
    branch: str
    commit_id: str
    parent_commit_id: str
    num_received: int
    num_accepted: int
    num_rejected: int
    num_duplicates: int
    num_removed: int
    rejections: tuple[Rejection, ...]
    rejections_truncated: bool


def elide(text: str, limit: int) -> str:
    """`text` in at most `limit` (>= 40) characters. Longer text first has each run of more than
    64 non-space characters (a quoted value, a name) cut to its first 24 and last 8, joined by
    "...[N chars]..." stating the run's length; if that is still too long, its end is cut and
    "...[N chars]" appended, N then being the length of the whole text."""
    if len(text) <= limit:
        return text
    short = _LONG_WORD.sub(_elided_word, text)
    if len(short) <= limit:
        return short
    tail = f"...[{len(text)} chars]"
    return short[: limit - len(tail)] + tail


def _elided_word(match: re.Match[str]) -> str:
    word = match[0]
    return f"{word[:_WORD_HEAD]}...[{len(word)} chars]...{word[-_WORD_TAIL:]}"


def repo_name(dataset: str) -> str:
    """The storage repository of a dataset (the dataset contract's rule); InvalidInput if the
    name is invalid."""
    try:
        return layout.repo_name(dataset)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


def check_branch(branch: str) -> str:
    """A valid user branch name (empty means 'main'); InvalidInput otherwise."""
    branch = branch or "main"
    if not _BRANCH_RE.match(branch):
        raise InvalidInput(
            f"invalid branch name {branch!r}: use up to 100 letters, digits, '_' or '-',"
            " starting with a letter or digit"
        )
    return branch
