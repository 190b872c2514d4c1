"""A new loop's plan checked against the world before it starts: the base checkpoint is in the
object store, the dataset has the branch, and the held-out ref resolves (to its commit id, kept
in the spec so every round evaluates on the same crystals)."""

from __future__ import annotations

from dataclasses import replace

import grpc
from storage import ObjectNotFound, ObjectStore
from svc_kit import InvalidInput, NotFound, Unavailable, public_text, shown_value

from loop_svc._clients import IngestClient
from loop_svc._spec import LoopSpec


def resolve_spec(spec: LoopSpec, ingest: IngestClient, objects: ObjectStore) -> LoopSpec:
    """`spec` with `evaluation.ref` resolved to a commit id. NotFound for a missing checkpoint,
    dataset, branch or held-out ref; InvalidInput for an empty held-out set; Unavailable when the
    ingest cannot be reached."""
    _check_checkpoint(objects, spec.base_checkpoint)
    branches = _call(lambda: ingest.branches(spec.dataset), "dataset.dataset")
    if spec.branch not in branches:
        shown = shown_value(spec.branch)
        raise NotFound(f"dataset.ref: dataset {spec.dataset} has no branch {shown}")
    evaluation = spec.evaluation
    commit, crystals = _call(
        lambda: ingest.read_crystals(evaluation.dataset, evaluation.ref, 1), "evaluation.dataset"
    )
    if not crystals:
        raise InvalidInput(f"evaluation.dataset: {evaluation.dataset} holds no crystals")
    return replace(spec, evaluation=replace(evaluation, ref=commit))


def _check_checkpoint(objects: ObjectStore, checkpoint_id: str) -> None:
    from trainer_svc import read_manifest

    try:
        read_manifest(objects, checkpoint_id)
    except ObjectNotFound:
        raise NotFound(f"base_checkpoint_id: no checkpoint {checkpoint_id}") from None
    except ValueError:
        raise InvalidInput(f"base_checkpoint_id: {checkpoint_id} is not a checkpoint") from None


def _call(fetch, field: str):
    """`fetch()`, the ingest's NOT_FOUND / INVALID_ARGUMENT as ours naming `field`."""
    try:
        return fetch()
    except grpc.RpcError as exc:
        code = exc.code()
        if code == grpc.StatusCode.NOT_FOUND:
            raise NotFound(f"{field}: {public_text(exc.details() or '')}") from None
        if code == grpc.StatusCode.INVALID_ARGUMENT:
            raise InvalidInput(f"{field}: {public_text(exc.details() or '')}") from None
        raise Unavailable(f"the ingest service answered {code.name}") from None
