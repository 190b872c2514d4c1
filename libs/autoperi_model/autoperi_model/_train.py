"""Training as a plain function; a Ray Train worker calls the same `train`.

Determinism: the crystals of step s come from a permutation seeded by (seed, epoch), and all
noise from one torch.Generator whose state is checkpointed, so resuming from a checkpoint gives
the same weights as an uninterrupted run (same thread count).

Data parallel: when `torch.distributed` is initialised with world size W > 1, rank r trains on
`batch_indices(...)[r::W]`, gradients are averaged with `all_reduce` before clipping (so every rank
takes the same optimizer step and the weights stay equal), rank r >= 1 draws noise from its own
generator (seed + r), and rank 0 alone writes checkpoints (holding every rank's generator state).
World size 1 (or no process group) is the single-process code path, unchanged.
"""

from __future__ import annotations

import logging
import math
import pickle
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from autoperi_model._batch import CrystalTable
from autoperi_model._checkpoint import load_train_state, load_weights, save_checkpoint
from autoperi_model._config import Config
from autoperi_model._flow import build_model
from autoperi_model._model import GenerativeModel
from autoperi_model._shard_data import table_from_shards
from autoperi_model._symmetry_data import SymmetricCrystals, symmetric_table

log = logging.getLogger(__name__)
Callback = Callable[[int, dict[str, float]], None]
# (step, metrics, checkpoint directory on rank 0 / None on other ranks), after each checkpoint
CheckpointCallback = Callable[[int, dict[str, float], Path | None], None]
VAL_CRYSTALS = 1024


def _world() -> tuple[int, int]:
    """(rank, world size) of the default process group; (0, 1) when there is none."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


@dataclass(frozen=True)
class TrainingData:
    """Training and validation tables and the data version: the dataset commit(s) whose
    featurised shards the tables were read from (`from_shards`), or a tag for synthetic data."""

    train: CrystalTable | SymmetricCrystals
    val: CrystalTable | SymmetricCrystals
    version: str

    def symmetric(self, workers: int = 2) -> TrainingData:
        """The same data as idealised crystals with their space-group operations
        (`SymmetricCrystals`), what symmetric flows train on; crystals spglib cannot analyse are
        dropped. Analyses are cached under AUTOPERI_CACHE_DIR (default ~/.cache/autoperi) by
        the data version, the table sizes and the tolerance."""
        return TrainingData(
            symmetric_table(self.train, f"{self.version}/train", workers),
            symmetric_table(self.val, f"{self.version}/val", workers),
            self.version,
        )

    @staticmethod
    def from_shards(
        train: Sequence[Mapping[str, Any]], val: Sequence[Mapping[str, Any]], version: str
    ) -> TrainingData:
        """Tables from featurised tensor shards (see `table_from_shards`); `val` may be empty."""
        return TrainingData(table_from_shards(train), table_from_shards(val), version)


class WarmStartError(ValueError):
    """`train.init_from` names no checkpoint whose weights load into the configured model. The
    message names the checkpoint's path and weights: for the user who chose them, not a remote
    client."""


def widened(
    weights: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """`weights` with each 2-d weight that has fewer input columns than the target's padded
    with zero columns on the right (new inputs appended to a layer, e.g. angular invariants),
    so the warm-started model computes exactly what the checkpoint did. Other shapes pass as
    they are (a mismatch then fails loudly in `load_state_dict`)."""
    out = dict(weights)
    for key, value in weights.items():
        new = target.get(key)
        if new is not None and value.dim() == 2 and new.dim() == 2:
            rows, cols = value.shape
            if rows == new.shape[0] and cols < new.shape[1]:
                out[key] = torch.cat([value, value.new_zeros(rows, new.shape[1] - cols)], dim=1)
    return out


def batch_indices(step: int, n: int, batch_size: int, seed: int) -> torch.Tensor:
    """Crystal indices of `step`: epochs are seeded permutations, the last partial batch dropped."""
    per_epoch = max(n // batch_size, 1)
    epoch, pos = divmod(step, per_epoch)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))
    return perm[pos * batch_size : (pos + 1) * batch_size]


def learning_rate(step: int, config: Config) -> float:
    """Linear warm-up, then cosine decay to `min_lr` at `max_steps`."""
    cfg = config.train
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    frac = min((step - cfg.warmup_steps) / max(cfg.max_steps - cfg.warmup_steps, 1), 1.0)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * frac))


class _Run:
    """Mutable state of one run: model, EMA copy, optimizer, noise generator, counters."""

    def __init__(self, config: Config, data: TrainingData) -> None:
        torch.manual_seed(config.train.seed)
        self.config, self.data = config, data
        self.volume_per_atom = data.train.volume_per_atom()
        self.model = build_model(config, self.volume_per_atom)
        if config.train.init_from:
            self._warm_start(Path(config.train.init_from))
        self.ema = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=config.train.lr)
        self.rank, self.world = _world()
        self.generator = torch.Generator().manual_seed(config.train.seed + self.rank)
        self.step, self.seconds, self.metrics = 0, 0.0, {}

    def _warm_start(self, checkpoint: Path) -> None:
        try:
            weights, _ = load_weights(checkpoint)
            weights = widened(weights, self.model.state_dict())
            result = self.model.load_state_dict(weights, strict=False)
        except (OSError, ValueError, RuntimeError, pickle.UnpicklingError) as exc:
            raise WarmStartError(f"{checkpoint} does not fit this model: {exc}") from exc
        if result.unexpected_keys:
            raise WarmStartError(
                f"{checkpoint} has weights this model lacks: {result.unexpected_keys}"
            )
        log.info("warm start from %s; new parameters: %s", checkpoint, result.missing_keys)

    def state(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "ema": self.ema,
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "step": self.step,
            "seconds": self.seconds,
            **({"generators": self._gather_generators()} if self.world > 1 else {}),
        }

    def _gather_generators(self) -> list[torch.Tensor]:
        """Every rank's generator state (a collective: all ranks call it)."""
        mine = self.generator.get_state()
        states = [torch.empty_like(mine) for _ in range(self.world)]
        torch.distributed.all_gather(states, mine)
        return states

    def load(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.ema = state["ema"]
        self.optimizer.load_state_dict(state["optimizer"])
        generators = state.get("generators", [])
        if len(generators) == self.world:
            self.generator.set_state(generators[self.rank])
        elif self.rank == 0:
            self.generator.set_state(state["generator"])
        self.step, self.seconds = int(state["step"]), float(state["seconds"])

    def train_step(self) -> dict[str, float]:
        cfg = self.config.train
        idx = batch_indices(self.step, len(self.data.train), cfg.batch_size, cfg.seed)
        idx = idx[self.rank :: self.world]
        batch = self.data.train.gather(idx).to(torch.float32)
        lr = learning_rate(self.step, self.config)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        loss, parts = self.model.loss(batch, self.generator)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.world > 1:
            self._average_gradients()
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self.optimizer.step()
        self._update_ema()
        self.step += 1
        return {"loss": float(loss.detach()), "grad_norm": float(norm), "lr": lr, **parts}

    def _average_gradients(self) -> None:
        """Contract: replaces every parameter's grad by its mean over the ranks (in place)."""
        params = list(self.model.parameters())
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.reshape(-1) for g in grads])
        torch.distributed.all_reduce(flat)
        flat /= self.world
        for p, chunk in zip(params, flat.split([g.numel() for g in grads]), strict=True):
            p.grad = chunk.view_as(p)

    def mean_over_ranks(self, metrics: dict[str, float]) -> dict[str, float]:
        """Metrics averaged over the ranks (a collective when W > 1; identity otherwise)."""
        if self.world == 1:
            return metrics
        values = torch.tensor(list(metrics.values()), dtype=torch.float64)
        torch.distributed.all_reduce(values)
        return dict(zip(metrics, (values / self.world).tolist(), strict=True))

    def agree(self, flag: bool) -> bool:
        """True on every rank if `flag` is true on any (a collective when W > 1)."""
        if self.world == 1:
            return flag
        value = torch.tensor([float(flag)])
        torch.distributed.all_reduce(value, op=torch.distributed.ReduceOp.MAX)
        return bool(value.item())

    @torch.no_grad()
    def _update_ema(self) -> None:
        decay = min(self.config.train.ema_decay, (1 + self.step) / (10 + self.step))
        for key, value in self.model.state_dict().items():
            if value.dtype.is_floating_point:
                self.ema[key].lerp_(value, 1 - decay)
            else:
                self.ema[key].copy_(value)

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Loss of the EMA weights on a fixed validation subset with fixed noise."""
        model = build_model(self.config, self.volume_per_atom)
        model.load_state_dict(self.ema)
        gen = torch.Generator().manual_seed(12345)
        n = min(VAL_CRYSTALS, len(self.data.val))
        sums: dict[str, float] = {}
        for start in range(0, n, self.config.train.batch_size):
            idx = torch.arange(start, min(start + self.config.train.batch_size, n))
            total, parts = model.loss(self.data.val.gather(idx).to(torch.float32), gen)
            for k, v in {"loss": float(total), **parts}.items():
                sums[k] = sums.get(k, 0.0) + v * len(idx) / n
        return {f"val_{k}": v for k, v in sums.items()}

    def save(self, out: Path) -> Path | None:
        """Checkpoint to `out` on rank 0 (returns it); other ranks only take part in collectives."""
        state = self.state()
        if self.rank != 0:
            return None
        self.metrics = {**self.metrics, **self.validate()}
        save_checkpoint(
            out,
            self.ema,
            state,
            {
                "config": self.config,
                "data_version": self.data.version,
                "volume_per_atom": self.volume_per_atom,
                "num_atoms_counts": tuple(torch.bincount(self.data.train.num_atoms).tolist()),
                "step": self.step,
                "train_seconds": self.seconds,
                "metrics": self.metrics,
            },
        )
        log.info("checkpoint step %d -> %s %s", self.step, out, self.metrics)
        return out

    def save_and_report(self, out: Path, callbacks: Sequence[CheckpointCallback]) -> None:
        saved = self.save(out)
        for callback in callbacks:
            callback(self.step, dict(self.metrics), saved)


def train(
    config: Config,
    data: TrainingData,
    out: Path | str = "checkpoint",
    resume: bool = False,
    callbacks: Sequence[Callback] = (),
    stop_at: int | None = None,
    checkpoint_callbacks: Sequence[CheckpointCallback] = (),
) -> GenerativeModel:
    """Train the model of `config` (flow or diffusion), checkpointing to the directory `out`.

    With `resume`, continue from the training state in `out`. Stops at `max_steps`, at step
    `stop_at` (an interruption: the schedule still runs to `max_steps`) or after `max_minutes` of
    this call, always ending with a checkpoint. Callbacks get (step, metrics, averaged over the
    ranks) every `log_every_steps`; checkpoint callbacks get (step, metrics, directory) after each
    checkpoint, the directory being None on ranks other than 0 (which write none). Under
    `torch.distributed` every rank must call `train` with the same arguments (see the module
    notes). Returns the model holding the EMA weights.
    """
    torch.set_num_threads(config.train.num_threads)
    out = Path(out)
    run = _Run(config, data)
    if resume:
        run.load(load_train_state(out))
    cfg = config.train
    started, saved_at = time.monotonic(), run.step if resume else None
    with _progress(cfg.progress and run.rank == 0) as bar:
        task = bar.add_task("train", total=cfg.max_steps, completed=run.step, loss=float("nan"))
        while run.step < min(cfg.max_steps, stop_at or cfg.max_steps):
            tick = time.monotonic()
            metrics = run.train_step()
            run.seconds += time.monotonic() - tick
            bar.update(task, completed=run.step, loss=metrics["loss"])
            if run.step % cfg.log_every_steps == 0:
                run.metrics = run.mean_over_ranks(metrics)
                for callback in callbacks:
                    callback(run.step, run.metrics)
            if run.step % cfg.checkpoint_every_steps == 0:
                run.save_and_report(out, checkpoint_callbacks)
                saved_at = run.step
            timed_out = bool(cfg.max_minutes) and time.monotonic() - started > 60 * cfg.max_minutes
            if cfg.max_minutes and run.agree(timed_out):
                break
    if saved_at != run.step:
        run.save_and_report(out, checkpoint_callbacks)
    run.model.load_state_dict(run.ema)
    return run.model


def _progress(enabled: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} loss {task.fields[loss]:.4f}"),
        TimeRemainingColumn(),
        disable=not enabled,
    )
