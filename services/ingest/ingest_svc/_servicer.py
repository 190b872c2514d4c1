"""The thin gRPC servicer: proto <-> domain (via `_convert`), work delegated to IngestCore."""

import asyncio
import itertools
import time
from collections.abc import Callable

import grpc
from autoperi.crystal.v1 import crystal_pb2
from autoperi.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from svc_kit import DeadlineExceeded, InvalidInput, check_deadline

from ingest_svc import _convert as convert
from ingest_svc._core import IngestCore
from ingest_svc._session import IngestSession

DEFAULT_PAGE = 100
DEFAULT_DIFF_PAGE = 10_000
DEFAULT_READ_BATCH = 256


class IngestServicer(ingest_pb2_grpc.IngestServiceServicer):
    """IngestService over an IngestCore; blocking work runs in threads.

    Ingest is all or nothing at the request: either the reply carries the id of the one commit
    the request made, or nothing was written (no commit, no dataset, no staging). To keep that
    promise the write starts only once the stream has ended and every record is parsed, while
    the RPC is still live and more than `commit_margin_s` of the client's deadline is left (for
    the write and the reply); otherwise the call fails with DEADLINE_EXCEEDED (or is cancelled)
    and writes nothing. The reply always fits a default-sized gRPC message: rejection reasons
    and keys are cut to a few hundred characters (a long value elided, its length stated) and
    the rejections listed are bounded in number and bytes. An ingest that commits nothing (every
    record rejected or already there) creates no dataset. What no server can rule out is a
    client that gives up, or a connection that drops, while the write runs: such a client sees
    an error although the commit happened; retrying with the same `request_id` then returns
    that commit instead of committing again.
    """

    def __init__(self, core: IngestCore, commit_margin_s: float) -> None:
        self.core = core
        self.commit_margin_s = commit_margin_s

    async def Ingest(self, request_iterator, context: grpc.aio.ServicerContext):
        session = None
        write_gate = _deadline_gate(context, self.commit_margin_s)
        backlog = 2 * self.core.parsers.limits.workers
        try:
            async for message in request_iterator:
                kind = message.WhichOneof("payload")
                if session is None:
                    session = await self._begin(message, kind)
                    continue
                await asyncio.to_thread(_feed, session, message, kind)
                await asyncio.to_thread(session.wait_for_capacity, backlog)
            if session is None:
                raise InvalidInput("the Ingest stream is empty: send a header first")
            check_deadline(context, self.commit_margin_s, "the ingest commit")
            result = await asyncio.to_thread(session.finish, write_gate)
        except BaseException:
            if session is not None:
                session.cancel()  # a write the thread has not started yet never happens
            raise
        return convert.ingest_response(result)

    async def _begin(self, message: ingest_pb2.IngestRequest, kind: str) -> IngestSession:
        if kind != "header":
            raise InvalidInput("the first message of an Ingest stream must be a header")
        target = convert.target_from_header(message.header)
        return await asyncio.to_thread(self.core.begin, target)

    async def ListDatasets(self, request, context):
        names = await asyncio.to_thread(self.core.list_datasets)
        page, token = _page(names, request.page_size or DEFAULT_PAGE, request.page_token)
        infos = await asyncio.to_thread(lambda: [self.core.get_dataset(n) for n in page])
        return ingest_pb2.ListDatasetsResponse(
            datasets=[convert.dataset_message(i) for i in infos], next_page_token=token
        )

    async def GetDataset(self, request, context):
        info = await asyncio.to_thread(self.core.get_dataset, request.dataset)
        return ingest_pb2.GetDatasetResponse(dataset=convert.dataset_message(info))

    async def Commit(self, request, context):
        info = await asyncio.to_thread(
            self.core.commit_staged, request.dataset, request.branch, request.message,
            dict(request.metadata), request.expected_head,
        )  # fmt: skip
        return ingest_pb2.CommitResponse(commit=convert.commit_message(info))

    async def ListCommits(self, request, context):
        commits = await asyncio.to_thread(
            self.core.list_commits, request.ref.dataset, request.ref.ref
        )
        page, token = _page(commits, request.page_size or DEFAULT_PAGE, request.page_token)
        return ingest_pb2.ListCommitsResponse(
            commits=[convert.commit_message(c) for c in page], next_page_token=token
        )

    async def Diff(self, request, context):
        result = await asyncio.to_thread(
            self.core.diff, request.dataset, request.from_ref, request.to_ref
        )
        changes = [(h, True) for h in result.added] + [(h, False) for h in result.removed]
        page, token = _page(changes, request.page_size or DEFAULT_DIFF_PAGE, request.page_token)
        return ingest_pb2.DiffResponse(
            from_commit_id=result.from_commit,
            to_commit_id=result.to_commit,
            added=[h for h, added in page if added],
            removed=[h for h, added in page if not added],
            num_added=len(result.added),
            num_removed=len(result.removed),
            next_page_token=token,
        )

    async def Merge(self, request, context):
        outcome = await asyncio.to_thread(
            self.core.merge, request.dataset, request.source_ref, request.destination_branch,
            request.message, dict(request.metadata), request.dry_run,
            request.expected_destination_head,
        )  # fmt: skip
        return convert.merge_response(outcome)

    async def ReadCrystals(self, request, context):
        commit, items = await asyncio.to_thread(
            self.core.read_crystals,
            request.ref.dataset,
            request.ref.ref,
            list(request.content_hashes),
        )
        if request.limit:
            items = itertools.islice(items, request.limit)
        size = request.batch_size or DEFAULT_READ_BATCH
        while True:
            check_deadline(context, 0.0, "reading crystals")
            batch = await asyncio.to_thread(_read_batch, items, size, request.ref.dataset, commit)
            if not batch:
                return
            yield ingest_pb2.ReadCrystalsResponse(commit_id=commit, crystals=batch)


def _deadline_gate(context: grpc.aio.ServicerContext, margin_s: float) -> Callable[[], None]:
    """A check, safe to run in any thread, that raises DeadlineExceeded once no more than
    `margin_s` seconds are left before the client's deadline (a no-op without a deadline)."""
    remaining = context.time_remaining()
    if remaining is None:
        return lambda: None
    deadline = time.monotonic() + remaining

    def check() -> None:
        left = deadline - time.monotonic()
        if left <= margin_s:
            raise DeadlineExceeded(
                f"{max(left, 0.0):.3f}s left before the deadline, the ingest commit needs at"
                f" least {margin_s}s; nothing was committed"
            )

    return check


def _feed(session, message: ingest_pb2.IngestRequest, kind: str) -> None:
    if kind == "cif":
        session.add_cif(message.cif.file_name, convert.chunk_text(message.cif))
    elif kind == "csv":
        text = convert.chunk_text(message.csv)
        session.add_csv(message.csv.file_name, text, message.csv.first_row)
    elif kind == "crystals":
        session.add_crystals([c.SerializeToString() for c in message.crystals.crystals])
    elif kind == "removal":
        session.remove(list(message.removal.content_hashes))
    elif kind == "header":
        raise InvalidInput("only the first message of an Ingest stream may be a header")
    else:
        raise InvalidInput("an Ingest message carries no payload")


def _read_batch(items, size: int, dataset: str, commit: str) -> list[crystal_pb2.Crystal]:
    batch = []
    for _, data in itertools.islice(items, size):
        message = crystal_pb2.Crystal.FromString(data)
        message.provenance.dataset = dataset
        message.provenance.dataset_commit = commit
        batch.append(message)
    return batch


def _page(items: list, size: int, token: str) -> tuple[list, str]:
    """One page of `items` after the offset `token`, and the next token ('' at the end)."""
    try:
        start = int(token or 0)
    except ValueError:
        raise InvalidInput(f"invalid page token {token!r}") from None
    if start < 0:
        raise InvalidInput(f"invalid page token {token!r}")
    end = start + size
    return items[start:end], (str(end) if end < len(items) else "")
