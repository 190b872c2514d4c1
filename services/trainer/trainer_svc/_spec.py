"""StartRunRequest -> a validated run plan (config completed with every default).

A request names no host path: datasets by name, shards by object-store ref (checked against the
store in TrainerCore), warm starts by checkpoint id. Errors name the field; a value is repeated
(`svc_kit.shown_value`) only when it is not path-like, so no message echoes a path.
"""

import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from autoperi.training.v1 import training_pb2 as pb
from autoperi_model import Config
from pydantic import ValidationError
from svc_kit import InvalidInput, shown_value

from trainer_svc._objects import is_sha256

DEFAULT_MAX_FAILURES = 2
_DATASET = re.compile(r"^[a-z0-9_-]{3,63}$")
_SPLIT = re.compile(r"^[a-z0-9_-]{1,63}$")
_URI_SCHEMES = ("file://", "s3://")


@dataclass(frozen=True)
class RunPlan:
    """What a run trains: the config, its data and compute.

    Data: `train_shards`/`val_shards` (ObjectRef dicts) when given or resolved from the
    featurestore (`train_dataset`/`val_dataset` as (name, ref)); one of the two is required.
    """

    config: Config
    num_workers: int
    use_gpu: bool
    cpus_per_worker: float
    memory_bytes_per_worker: int
    max_failures: int
    init_checkpoint_id: str
    train_shards: tuple[dict[str, Any], ...] = ()
    val_shards: tuple[dict[str, Any], ...] = ()
    train_dataset: tuple[str, str] | None = None
    val_dataset: tuple[str, str] | None = None
    labels: dict[str, str] = field(default_factory=dict)


def parse_config(request: pb.StartRunRequest) -> Config:
    """The request's config YAML with the typed overrides applied; InvalidInput naming the field."""
    try:
        data = yaml.safe_load(request.config_yaml) if request.config_yaml.strip() else {}
    except yaml.YAMLError as exc:
        raise InvalidInput(f"config_yaml is not valid YAML: {_first_line(exc)}") from None
    if not isinstance(data, dict):
        raise InvalidInput("config_yaml must be a mapping of sections (data, backbone, train...)")
    overrides = {"progress": False}
    for name, key in (("max_steps", "max_steps"), ("batch_size", "batch_size")):
        if request.HasField(name):
            overrides[key] = getattr(request, name)
    if request.HasField("learning_rate"):
        overrides["lr"] = request.learning_rate
    if request.seed:
        overrides["seed"] = request.seed
    if request.checkpoint_every_steps:
        overrides["checkpoint_every_steps"] = request.checkpoint_every_steps
    try:
        config = Config.model_validate(data).updated(train=overrides)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        raise InvalidInput(f"invalid config: {where}: {error['msg']}") from None
    _check_no_paths(config)
    return config


def _check_no_paths(config: Config) -> None:
    """InvalidInput unless the config's data is named, not located: `data.dataset` a dataset
    name, the splits split names, and `train.init_from` unset (a request warm-starts from a
    stored checkpoint by `resume_from_checkpoint_id`)."""
    if not _DATASET.match(config.data.dataset):
        raise InvalidInput(
            f"config data.dataset {shown_value(config.data.dataset)} is not a dataset name"
            " (3-63 characters of a-z, 0-9, '_' and '-'; paths are not accepted)"
        )
    for name in ("train_split", "val_split"):
        if not _SPLIT.match(getattr(config.data, name)):
            raise InvalidInput(
                f"config data.{name} {shown_value(getattr(config.data, name))} is not a split name"
                " (1-63 characters of a-z, 0-9, '_' and '-'; paths are not accepted)"
            )
    if config.train.init_from:
        raise InvalidInput(
            "config train.init_from cannot be set in a request: warm-start from a stored"
            " checkpoint with resume_from_checkpoint_id"
        )


def plan_run(request: pb.StartRunRequest) -> RunPlan:
    """Validate a StartRunRequest (everything that needs no other service); InvalidInput if bad."""
    config = parse_config(request)
    res = request.resources
    workers = res.num_workers or 1
    if config.train.batch_size % workers:
        raise InvalidInput(
            f"batch_size {config.train.batch_size} is not a multiple of num_workers {workers}"
        )
    if res.cpus_per_worker < 0:
        raise InvalidInput("resources.cpus_per_worker must not be negative")
    if request.resume_from_checkpoint_id and not is_sha256(request.resume_from_checkpoint_id):
        raise InvalidInput("resume_from_checkpoint_id must be 64 lower-case hex characters")
    return RunPlan(
        config=config,
        num_workers=workers,
        use_gpu=res.use_gpu,
        cpus_per_worker=res.cpus_per_worker or 1.0,
        memory_bytes_per_worker=res.memory_bytes_per_worker,
        max_failures=request.max_failures
        if request.HasField("max_failures")
        else DEFAULT_MAX_FAILURES,
        init_checkpoint_id=request.resume_from_checkpoint_id,
        train_shards=_refs(request.train_shards, "train_shards"),
        val_shards=_refs(request.val_shards, "val_shards"),
        train_dataset=_dataset(request, "train_dataset"),
        val_dataset=_dataset(request, "val_dataset"),
        labels=dict(request.labels),
    )


def _refs(refs, name: str) -> tuple[dict[str, Any], ...]:
    out = []
    for i, ref in enumerate(refs):
        if not ref.uri.startswith(_URI_SCHEMES):
            raise InvalidInput(
                f"{name}[{i}].uri must be a file:// or s3:// URI of this service's object store"
            )
        if not is_sha256(ref.sha256):
            raise InvalidInput(f"{name}[{i}].sha256 must be 64 lower-case hex characters")
        out.append({"uri": ref.uri, "sha256": ref.sha256, "size_bytes": ref.size_bytes})
    return tuple(out)


def _dataset(request: pb.StartRunRequest, name: str) -> tuple[str, str] | None:
    if not request.HasField(name) or not getattr(request, name).dataset:
        return None
    ref = getattr(request, name)
    if not _DATASET.match(ref.dataset):
        raise InvalidInput(f"{name}.dataset {shown_value(ref.dataset)} is not a valid dataset name")
    return ref.dataset, ref.ref


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
