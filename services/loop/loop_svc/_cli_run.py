"""What `autoperi loop` does once its plan is valid: prepare the data (seed dataset, held-out
dataset, base checkpoint in the store), then run the loop on the loop service and follow it, or
(--in-process) run the engine here; the report is written from the loop's journal either way."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import typer

from loop_svc._clients import IngestClient
from loop_svc._journal import JOURNAL_FILE, Journal
from loop_svc._spec import LoopSpec


@dataclass(frozen=True)
class Plan:
    """The command's loop and where its data and report go."""

    spec: LoopSpec
    loop_id: str
    held_out: Path
    seed_from: Path | None
    seed_size: int
    state_dir: Path
    storage_uri: str
    out: Path | None
    ingest: str

    def report_dir(self, loop_id: str) -> Path:
        return self.out or Path("reports/loop") / loop_id


def prepare_data(plan: Plan) -> None:
    """Create the loop's dataset (--seed-from) and its held-out dataset when missing."""
    from loop_svc._run import seed_dataset

    ingest, spec = IngestClient(plan.ingest), plan.spec
    if plan.seed_from:
        added = seed_dataset(ingest, spec.dataset, plan.seed_from, plan.seed_size, spec.branch)
        if added:
            typer.echo(f"dataset {spec.dataset}: {added} seed crystals added")
    evaluation = spec.evaluation
    added = seed_dataset(ingest, evaluation.dataset, plan.held_out, evaluation.size)
    if added:
        typer.echo(f"held-out dataset {evaluation.dataset}: {added} crystals added")


def run_on_service(plan: Plan, address: str) -> None:
    """StartLoop (or resume --loop-id) on the service at `address`, print its events, write
    the report; exit 1 when the loop fails or is cancelled."""
    import grpc
    from autoperi.loop.v1 import loop_pb2 as pb
    from svc_kit import open_channel

    from loop_svc.client import follow, get_loop, start_loop

    try:
        with open_channel(address) as channel:
            existing = get_loop(channel, plan.loop_id) if plan.loop_id else None
            request = _start_request(plan, existing)
            loop = start_loop(channel, request)
            typer.echo(f"loop {loop.loop_id} on {address}")
            for event in follow(channel, loop.loop_id):
                typer.echo(f"{event.time.ToDatetime():%H:%M:%S} {event.message}")
            loop = get_loop(channel, loop.loop_id)
    except grpc.RpcError as exc:
        typer.echo(f"loop service {address}: {exc.code().name}: {exc.details()}", err=True)
        raise typer.Exit(1) from None
    data = _report(plan, loop.loop_id)
    if loop.state != pb.LOOP_STATE_SUCCEEDED:
        state = pb.LoopState.Name(loop.state).removeprefix("LOOP_STATE_").lower()
        typer.echo(f"loop {loop.loop_id} {state}: {loop.error.message}", err=True)
        typer.echo(f"resume with --loop-id {loop.loop_id}", err=True)
        raise typer.Exit(1)
    _summary(data or {"rounds": []})


def _start_request(plan: Plan, existing):  # -> loop_pb2.StartLoopRequest
    """The StartLoopRequest: resume `existing`, else a new loop named by --loop-id (its
    request_id) whose base checkpoint is stored first when it is a directory."""
    from storage import open_object_store

    from loop_svc._convert import spec_to_request
    from loop_svc._run import store_checkpoint

    prepare_data(plan)
    if existing is not None:
        request = spec_to_request(
            replace(plan.spec, base_checkpoint=existing.spec.base_checkpoint_id)
        )
        request.resume_loop_id = existing.loop_id
        return request
    objects = open_object_store(plan.storage_uri)
    base = store_checkpoint(objects, plan.spec.base_checkpoint)
    request = spec_to_request(replace(plan.spec, base_checkpoint=base))
    request.request_id = plan.loop_id or uuid.uuid4().hex[:12]
    return request


def run_in_process(plan: Plan, scorer: str, sampler: str, trainer: str) -> None:
    """The loop's engine in this process, against the services at these addresses."""
    from loop_svc._run import Addresses, build_clients, run_loop

    _log_to_console()
    loop_id = plan.loop_id or uuid.uuid4().hex[:12]
    prepare_data(plan)
    addresses = Addresses(plan.ingest, scorer, sampler, trainer)
    cache = plan.state_dir / loop_id / "checkpoints"
    clients = build_clients(plan.spec, addresses, plan.storage_uri, cache)
    typer.echo(f"loop {loop_id}: journal {plan.state_dir / loop_id / JOURNAL_FILE}")
    report = plan.report_dir(loop_id)
    try:
        data = run_loop(plan.spec, clients, plan.state_dir, loop_id, report)
    except Exception as exc:
        typer.echo(f"loop {loop_id} failed: {type(exc).__name__}: {exc}", err=True)
        typer.echo(f"resume with --loop-id {loop_id}; report in {report}", err=True)
        raise typer.Exit(1) from None
    _summary(data)
    typer.echo(f"report: {report / 'README.md'}")


def _report(plan: Plan, loop_id: str) -> dict[str, Any] | None:
    """Write the report from the journal under --state-dir; its data (None: not there)."""
    from loop_svc._report import write_report

    path = plan.state_dir / loop_id / JOURNAL_FILE
    if not path.exists():
        typer.echo(f"no journal at {path} (--state-dir is the service's): no report", err=True)
        return None
    journal = Journal.load(path)
    report = plan.report_dir(loop_id)
    write_report(journal.data, journal.directory, report)
    typer.echo(f"report: {report / 'README.md'}")
    return journal.data


def _summary(data: dict[str, Any]) -> None:
    for rnd in data["rounds"]:
        selected = rnd.get("num_selected", 0)
        typer.echo(f"round {rnd['index']}: {selected} selected; {rnd.get('decision', '')}")


def _log_to_console() -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    logger = logging.getLogger("loop_svc")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # the CLI's root handler would print each line again
