"""Helpers for callers of the trainer (the active-learning loop, scripts, tests).

run = start_run(channel, name="round-2", config_yaml=text, train_dataset=("mp20", "loop/2"))
run = wait(channel, run.run_id)                      # follows StreamMetrics to the end
path = checkpoint_files(objects, run.latest_checkpoint.checkpoint_id, "ck")
Generator.from_checkpoint(path)
"""

import time
from collections.abc import Iterator
from pathlib import Path

import grpc
from autoperi.common.v1 import common_pb2
from autoperi.training.v1 import training_pb2 as pb
from autoperi.training.v1 import training_pb2_grpc
from storage import ObjectStore, open_object_store

from trainer_svc._objects import fetch_checkpoint
from trainer_svc._runs import TERMINAL


def stub(channel: grpc.Channel) -> training_pb2_grpc.TrainingServiceStub:
    """The TrainingService stub of a channel."""
    return training_pb2_grpc.TrainingServiceStub(channel)


def start_run(
    channel: grpc.Channel,
    *,
    train_dataset: tuple[str, str] | None = None,
    val_dataset: tuple[str, str] | None = None,
    timeout: float = 60.0,
    **fields,
) -> pb.Run:
    """StartRun with StartRunRequest `fields`; datasets as (name, ref). Returns the PENDING run."""
    request = pb.StartRunRequest(**fields)
    if train_dataset is not None:
        request.train_dataset.CopyFrom(
            common_pb2.DatasetRef(dataset=train_dataset[0], ref=train_dataset[1])
        )
    if val_dataset is not None:
        request.val_dataset.CopyFrom(
            common_pb2.DatasetRef(dataset=val_dataset[0], ref=val_dataset[1])
        )
    return stub(channel).StartRun(request, timeout=timeout).run


def stream(
    channel: grpc.Channel, run_id: str, from_step: int = 0, follow: bool = True, timeout=None
) -> Iterator[pb.StreamMetricsResponse]:
    """The run's events from `from_step`: history, then (with `follow`) live until it ends."""
    request = pb.StreamMetricsRequest(run_id=run_id, from_step=from_step, follow=follow)
    yield from stub(channel).StreamMetrics(request, timeout=timeout)


def wait(channel: grpc.Channel, run_id: str, timeout: float = 3600.0) -> pb.Run:
    """Follow the run until it ends (reconnecting after a dropped stream); the final run."""
    deadline, next_step = time.monotonic() + timeout, 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"run {run_id} did not end within {timeout:.0f}s")
        try:
            for event in stream(channel, run_id, next_step, True, timeout=left):
                if event.HasField("metrics"):
                    next_step = event.metrics.step + 1
        except grpc.RpcError as exc:
            if exc.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise
        run = stub(channel).GetRun(pb.GetRunRequest(run_id=run_id), timeout=30).run
        if run.state in TERMINAL:
            return run


def checkpoint_files(objects: ObjectStore | str, checkpoint_id: str, dest: str | Path) -> Path:
    """Download a checkpoint (files verified against its manifest) into the directory `dest`."""
    store = open_object_store(objects) if isinstance(objects, str) else objects
    return fetch_checkpoint(store, checkpoint_id, dest)
