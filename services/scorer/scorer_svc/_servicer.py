"""The thin gRPC servicer: proto <-> domain (via `_convert`), work delegated to ScorerCore."""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator

import grpc
from autoperi.scorer.v1 import scorer_pb2, scorer_pb2_grpc
from svc_kit import check_deadline

from scorer_svc import _convert as convert
from scorer_svc._core import RunStats, ScorerCore
from scorer_svc._model import Scores

REPLY_MARGIN_S = 0.05  # of the client's deadline, kept for sending the reply
_DONE = object()


class ScorerServicer(scorer_pb2_grpc.ScorerServiceServicer):
    """ScorerService over a ScorerCore; blocking work runs in threads."""

    def __init__(self, core: ScorerCore) -> None:
        self.core = core

    async def Score(self, request: scorer_pb2.ScoreRequest, context: grpc.aio.ServicerContext):
        start, stats = time.perf_counter(), RunStats()
        crystals, options, commit, batches = await self._begin(request, context, stats)
        results: list[Scores] = []
        async for batch in _each(batches):
            results.extend(batch)
        results.sort(key=lambda r: r.index)
        total = time.perf_counter() - start
        return scorer_pb2.ScoreResponse(
            results=[convert.result_message(r, options, crystals[r.index]) for r in results],
            novelty_reference_commit=commit,
            timing=convert.timing(stats.queued_s, stats.compute_s, total),
        )

    async def ScoreStream(
        self, request: scorer_pb2.ScoreStreamRequest, context: grpc.aio.ServicerContext
    ):
        crystals, options, commit, batches = await self._begin(request, context, RunStats())
        done = 0
        async for batch in _each(batches):
            done += len(batch)
            yield scorer_pb2.ScoreStreamResponse(
                results=[convert.result_message(r, options, crystals[r.index]) for r in batch],
                novelty_reference_commit=commit,
                num_done=done,
                num_total=len(crystals),
            )

    async def GetScorerInfo(self, request, context):
        return convert.info_message(self.core.info())

    async def _begin(self, request, context: grpc.aio.ServicerContext, stats: RunStats):
        """(crystals, options, novelty commit, batch iterator) of a Score(Stream) request."""
        remaining = check_deadline(context, REPLY_MARGIN_S, "scoring")
        deadline = None if remaining is None else time.monotonic() + remaining - REPLY_MARGIN_S
        options = convert.options_from_proto(request.options)
        self.core.check(request.crystals, options)  # empty, too large: before parsing
        crystals = await asyncio.to_thread(convert.crystals_from_request, request.crystals)
        commit, batches = await asyncio.to_thread(
            self.core.score, crystals, options, deadline, stats
        )
        return crystals, options, commit, batches


async def _each(batches: Iterator[list[Scores]]) -> AsyncIterator[list[Scores]]:
    """The items of a blocking iterator, each fetched in a thread; closed on exit."""
    try:
        while (batch := await asyncio.to_thread(next, batches, _DONE)) is not _DONE:
            yield batch
    finally:
        with contextlib.suppress(ValueError):  # still running in its thread: it ends by itself
            batches.close()
