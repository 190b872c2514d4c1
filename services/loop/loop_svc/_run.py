"""Build a loop from addresses (the local stack by default) and run it to the end."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import grpc
from storage import ObjectStore, open_object_store
from svc_kit import open_channel

from loop_svc._clients import GrpcSampler, GrpcScorer, IngestClient, LoopClients, TrainerClient
from loop_svc._engine import LoopEngine
from loop_svc._evaluate import CspEvaluator, LocalSampler, held_out_crystals
from loop_svc._journal import Journal
from loop_svc._report import write_report
from loop_svc._spec import LoopSpec

log = logging.getLogger("loop_svc.run")
SERVICE_WAIT_S = 300.0  # a restarted stack loads CHGNet and starts Ray Serve meanwhile


class ServiceUnavailable(RuntimeError):
    """A service the loop calls did not accept connections in time."""


@dataclass(frozen=True)
class Addresses:
    """host:port of each service (defaults: `autoperi stack`, infra/local/README.md)."""

    ingest: str = "127.0.0.1:50061"
    scorer: str = "127.0.0.1:50063"
    sampler: str = "127.0.0.1:50064"
    trainer: str = "127.0.0.1:50065"


def wait_for_services(
    addresses: Addresses, timeout_s: float = SERVICE_WAIT_S, skip: tuple[str, ...] = ()
) -> None:
    """Return once every service at `addresses` (but `skip`) accepts connections, waiting up
    to `timeout_s` in all: a service that restarts with its stack resumes its loops while the
    other services still start. ServiceUnavailable names the first that does not answer."""
    deadline = time.monotonic() + timeout_s
    for field in fields(addresses):
        if field.name in skip:
            continue
        address = getattr(addresses, field.name)
        with open_channel(address) as channel:
            try:
                grpc.channel_ready_future(channel).result(max(0.0, deadline - time.monotonic()))
            except grpc.FutureTimeoutError:
                raise ServiceUnavailable(
                    f"the {field.name} service at {address} did not accept connections within "
                    f"{timeout_s:g} s"
                ) from None


def build_clients(
    spec: LoopSpec,
    addresses: Addresses,
    storage_uri: str,
    cache: Path,
    relax: bool = False,
) -> LoopClients:
    """Clients of the services at `addresses`; checkpoints read from `storage_uri` (the store
    the trainer writes); the held-out crystals are read from the ingest. `spec.sample_in_process`:
    sample from the loop's current checkpoint here instead of the sampler service (which samples
    from the checkpoint it serves)."""
    wait_for_services(addresses, skip=("sampler",) if spec.sample_in_process else ())
    objects = open_object_store(storage_uri)
    ingest, evaluation = IngestClient(addresses.ingest), spec.evaluation
    _, held_out = ingest.read_crystals(evaluation.dataset, evaluation.ref, evaluation.size)
    evaluator = CspEvaluator(held_out, objects, cache, evaluation.steps, spec.seed)
    local = spec.sample_in_process
    sampler = LocalSampler(objects, cache) if local else GrpcSampler(addresses.sampler)
    return LoopClients(
        sampler=sampler,
        scorer=GrpcScorer(addresses.scorer, relax=relax),
        ingest=ingest,
        trainer=TrainerClient(addresses.trainer),
        evaluator=evaluator,
        objects=objects,
    )


def seed_dataset(
    ingest: IngestClient, dataset: str, path: Path, size: int, branch: str = "main"
) -> int:
    """Create `dataset` (on `branch`) from the first `size` valid crystals of `path` when it does
    not exist yet; the crystals added (0 when it existed). Also makes held-out datasets."""
    import grpc

    try:
        ingest.branches(dataset)
        return 0
    except grpc.RpcError as exc:
        if exc.code() != grpc.StatusCode.NOT_FOUND:
            raise
    crystals = held_out_crystals(path, size)
    reply = ingest.ingest(
        dataset, branch, "", crystals, create_dataset=True, message=f"loop data from {path.name}"
    )
    return int(reply.num_accepted)


def store_checkpoint(objects: ObjectStore, base: str) -> str:
    """The checkpoint id of `base`: an id as it is, a checkpoint directory stored first."""
    from trainer_svc import is_sha256, publish_checkpoint

    if is_sha256(base):
        return base
    checkpoint_id, _ = publish_checkpoint(objects, Path(base), "base", 0, 0, {})
    return checkpoint_id


def run_loop(
    spec: LoopSpec, clients: LoopClients, state_dir: Path, loop_id: str, out_dir: Path | None
) -> dict[str, Any]:
    """Run (or resume) loop `loop_id`; its journal lives in `state_dir/<loop_id>/`. The report
    is written to `out_dir` (also when the loop fails)."""
    journal = Journal.open(state_dir, loop_id, spec.to_json())
    try:
        return LoopEngine(spec, clients, journal).run()
    finally:
        if out_dir is not None:
            write_report(journal.data, journal.directory, out_dir)
