"""Proto <-> domain conversions of the ingest service (the only module reading its messages)."""

from autoperi.ingest.v1 import ingest_pb2
from google.protobuf.timestamp_pb2 import Timestamp
from svc_kit import InvalidInput

from ingest_svc._core import CommitInfo, DatasetInfo, MergeOutcome
from ingest_svc._model import IngestResult, IngestTarget, RejectPolicy

_POLICIES = {
    ingest_pb2.REJECT_POLICY_UNSPECIFIED: RejectPolicy.SKIP_RECORD,
    ingest_pb2.REJECT_POLICY_SKIP_RECORD: RejectPolicy.SKIP_RECORD,
    ingest_pb2.REJECT_POLICY_ABORT: RejectPolicy.ABORT,
}


def target_from_header(header: ingest_pb2.IngestHeader) -> IngestTarget:
    """The IngestTarget of a stream's header."""
    return IngestTarget(
        dataset=header.dataset,
        branch=header.branch or "main",
        message=header.message,
        create_dataset=header.create_dataset,
        create_branch_from=header.create_branch_from,
        metadata=dict(header.metadata),
        source=header.source,
        expected_head=header.expected_head,
        dry_run=header.dry_run,
        stage_only=header.stage_only,
        reject_policy=_POLICIES.get(header.reject_policy, RejectPolicy.SKIP_RECORD),
        request_id=header.request_id,
    )


def chunk_text(chunk: ingest_pb2.CifChunk | ingest_pb2.CsvChunk) -> str:
    """The text of a CIF or CSV chunk: `text`, or `raw` decoded here as UTF-8 (a leading BOM
    dropped). Bytes that are not UTF-8 stay as surrogate escapes (U+DC80..U+DCFF), which the
    parser turns back into the same bytes, so it rejects exactly the records holding them
    ("not_utf8") and reads the rest. InvalidInput if both fields are set."""
    if not chunk.raw:
        return chunk.text
    if chunk.text:
        raise InvalidInput(f"a chunk of {chunk.file_name!r} sets both text and raw: send one")
    return chunk.raw.decode("utf-8-sig", errors="surrogateescape")


def ingest_response(result: IngestResult) -> ingest_pb2.IngestResponse:
    """The reply of an Ingest call."""
    return ingest_pb2.IngestResponse(
        dataset=result.dataset,
        branch=result.branch,
        commit_id=result.commit_id,
        parent_commit_id=result.parent_commit_id,
        num_received=result.num_received,
        num_accepted=result.num_accepted,
        num_rejected=result.num_rejected,
        num_duplicates=result.num_duplicates,
        num_removed=result.num_removed,
        rejected_records=[
            ingest_pb2.RejectedRecord(record_key=r.record_key, code=r.code, message=r.message)
            for r in result.rejections
        ],
        rejected_records_truncated=result.rejections_truncated,
    )


def timestamp(seconds: float) -> Timestamp:
    """A Timestamp message for seconds since the epoch."""
    message = Timestamp()
    message.FromNanoseconds(int(seconds * 1e9))
    return message


def dataset_message(info: DatasetInfo) -> ingest_pb2.Dataset:
    """A Dataset message with its branches."""
    branches = [
        ingest_pb2.Branch(
            name=b.name,
            head_commit_id=b.head,
            num_crystals=b.num_crystals,
            has_staged_changes=b.has_staged,
            updated=timestamp(b.updated),
        )
        for b in info.branches
    ]
    return ingest_pb2.Dataset(
        name=info.name,
        default_branch=info.default_branch,
        branches=branches,
        created=timestamp(info.created),
    )


def commit_message(info: CommitInfo) -> ingest_pb2.CommitInfo:
    """A CommitInfo message."""
    return ingest_pb2.CommitInfo(
        commit_id=info.id,
        parent_ids=list(info.parents),
        message=info.message,
        metadata=dict(info.metadata),
        created=timestamp(info.timestamp),
        num_crystals=info.num_crystals,
    )


def merge_response(outcome: MergeOutcome) -> ingest_pb2.MergeResponse:
    """The reply of a Merge call (conflicts name the crystal keys both sides changed)."""
    return ingest_pb2.MergeResponse(
        commit_id=outcome.commit_id,
        base_commit_id=outcome.base,
        destination_parent_id=outcome.destination_parent,
        conflicts=[ingest_pb2.MergeConflict(record_key=k) for k in outcome.conflicts],
        num_added=outcome.num_added,
        num_removed=outcome.num_removed,
        fast_forward=outcome.fast_forward,
    )
