"""The thin gRPC servicer of the trainer: requests to TrainerCore calls, in worker threads."""

import asyncio

import grpc
from autoperi.training.v1 import training_pb2 as pb
from autoperi.training.v1 import training_pb2_grpc
from svc_kit import InvalidInput

from trainer_svc._core import TrainerCore

FOLLOW_POLL_S = 1.0


class TrainingServicer(training_pb2_grpc.TrainingServiceServicer):
    """TrainingService over a TrainerCore."""

    def __init__(self, core: TrainerCore) -> None:
        self.core = core

    async def StartRun(self, request, context: grpc.aio.ServicerContext):
        run = await asyncio.to_thread(self.core.start, request)
        return pb.StartRunResponse(run=run)

    async def GetRun(self, request, context: grpc.aio.ServicerContext):
        return pb.GetRunResponse(run=self.core.get(_run_id(request)))

    async def ListRuns(self, request, context: grpc.aio.ServicerContext):
        runs, token = self.core.list(
            set(request.states), dict(request.labels), request.page_size, request.page_token
        )
        return pb.ListRunsResponse(runs=runs, next_page_token=token)

    async def CancelRun(self, request, context: grpc.aio.ServicerContext):
        run = await asyncio.to_thread(self.core.cancel, _run_id(request), request.reason)
        return pb.CancelRunResponse(run=run)

    async def StreamMetrics(self, request, context: grpc.aio.ServicerContext):
        record = self.core.record(_run_id(request))
        index = 0
        while True:
            events, index, terminal = await asyncio.to_thread(
                record.wait_events, request.from_step, index, FOLLOW_POLL_S
            )
            for event in events:
                yield event
            if terminal or not request.follow:
                return


def _run_id(request) -> str:
    if not request.run_id:
        raise InvalidInput("run_id is required")
    return request.run_id
