"""Domain types of the ingest service; dataset names checked against the dataset contract."""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

import autoperi_data as layout
from svc_kit import InvalidInput

STAGING_PREFIX = "_staged_"  # hidden branch holding a branch's staged (uncommitted) records
_BRANCH_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,100}$")


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


@dataclass(frozen=True)
class Rejection:
    """A record that was not accepted: its key, a short code and one sentence."""

    record_key: str
    code: str
    message: str


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
