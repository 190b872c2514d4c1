"""`train_loop_per_worker(config)`: one Ray Train worker of a run, built from its config dict.

Config keys: run_id, config_yaml, storage_uri, train_shards / val_shards (ObjectRef dicts of the
featurestore's tensor shards of a dataset commit, read only as blobs of the store), data_version,
init_checkpoint_id (the only warm start: a checkpoint that does not fit the model fails the run
naming its id only), control (the run's RunControl handle). Rank 0 stores each checkpoint in the
object store and reports it to Ray Train (`ray.train.report` with a directory checkpoint, the
service's event in the metrics); the controller forwards it once registered (ControllerEvents).
Every rank calls `report` at the same steps. A restarted worker group resumes from
`ray.train.get_checkpoint()`.
"""

import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import ray
import ray.train
import torch
import torch.distributed as dist
import yaml
from autoperi_model import Config, TrainingData, WarmStartError, read_manifest, train
from storage import open_object_store

from trainer_svc._control import EVENT_KEY
from trainer_svc._objects import fetch_checkpoint, publish_checkpoint, read_shards

log = logging.getLogger("trainer_svc.worker")


class Cancelled(Exception):
    """Raised on every rank at the same step when the run is cancelled."""


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """Train one worker's share of the run described by `config` (see the module notes)."""
    rank = ray.train.get_context().get_world_rank()
    control, objects = config["control"], open_object_store(config["storage_uri"])
    work = Path(tempfile.mkdtemp(prefix=f"autoperi-train-r{rank}-"))
    try:
        model_config = Config.model_validate(yaml.safe_load(config["config_yaml"]))
        out, resumed = work / "checkpoint", _restore(work / "checkpoint")
        if rank == 0:
            ray.get(control.attempt.remote(resumed))
        control.push.remote({"kind": "worker", "rank": rank, "pid": os.getpid()})
        if config["init_checkpoint_id"] and resumed is None:
            init = fetch_checkpoint(objects, config["init_checkpoint_id"], work / "init")
            model_config = model_config.updated(train={"init_from": str(init)})
        data = _data(config, objects, model_config.flow.symmetric)
        reporter = _Reporter(
            config["run_id"], rank, control, objects, model_config, len(data.train)
        )
        if reporter.cancelled():
            return
        callbacks, on_checkpoint = [reporter.on_metrics], [reporter.on_checkpoint]
        try:
            train(model_config, data, out, resumed is not None, callbacks, None, on_checkpoint)
        except WarmStartError:  # its message names weights and a worker path: kept in the log
            log.warning("run %s: warm start failed", config["run_id"], exc_info=True)
            checkpoint_id = config["init_checkpoint_id"]
            raise ValueError(f"checkpoint {checkpoint_id} does not fit this run's model") from None
    except Cancelled:
        log.info("run %s cancelled", config["run_id"])
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _restore(out: Path) -> int | None:
    """Copy Ray Train's latest checkpoint into `out`; its step, or None when starting fresh."""
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as directory:
        shutil.copytree(directory, out)
    return read_manifest(out).step


def _data(config: dict[str, Any], objects, symmetric: bool) -> TrainingData:
    """The run's shards as training data; a symmetric flow trains on the idealised crystals with
    their operations, as `autoperi train` does."""
    train_shards = read_shards(config["train_shards"], objects)
    val_shards = read_shards(config["val_shards"], objects)
    data = TrainingData.from_shards(train_shards, val_shards, config["data_version"])
    return data.symmetric() if symmetric else data


class _Reporter:
    """The callbacks `train` calls: metrics to the service, checkpoints to store and Ray."""

    def __init__(self, run_id, rank, control, objects, config: Config, num_train: int) -> None:
        self.run_id, self.rank, self.control, self.objects = run_id, rank, control, objects
        self.steps_per_epoch = max(num_train // config.train.batch_size, 1)

    def cancelled(self) -> bool:
        """The cancel flag as rank 0 sees it, the same on every rank (a collective)."""
        flag = torch.tensor([float(self.rank == 0 and ray.get(self.control.is_cancelled.remote()))])
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())

    def on_metrics(self, step: int, metrics: dict[str, float]) -> None:
        if self.rank == 0:
            event = {"kind": "metrics", "step": step, "epoch": self._epoch(step), "values": metrics}
            self.control.push.remote(event)
        if self.cancelled():
            raise Cancelled

    def on_checkpoint(self, step: int, metrics: dict[str, float], path: Path | None) -> None:
        report = {"step": step, **metrics}
        if path is None:
            ray.train.report(report, checkpoint=None)
            return
        epoch = self._epoch(step)
        ck_id, ref = publish_checkpoint(self.objects, path, self.run_id, step, epoch, metrics)
        event = {"kind": "checkpoint", "step": step, "epoch": epoch, "metrics": metrics}
        report[EVENT_KEY] = {**event, "checkpoint_id": ck_id, "manifest": ref, "time": time.time()}
        ray.train.report(report, checkpoint=ray.train.Checkpoint.from_directory(path))

    def _epoch(self, step: int) -> int:
        return step // self.steps_per_epoch
