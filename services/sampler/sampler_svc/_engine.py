"""Sampling engines: what a sampler deployment calls to turn batched work into crystals.

An `Engine` wraps one loaded checkpoint. The deployment merges the `Chunk`s of many requests
(cells of one request with one seed, steps and sampler) into one `Engine.generate` call; the
engine returns one crystal list per chunk. Results do not depend on how requests were batched:
sample i of a request is integrated from base noise drawn from its own generator seeded by
(seed, i) (`sample_seed`), so the same request gives the same crystals whether it ran alone or
merged with others (up to float rounding of batched matrix products).

`FlowEngine` serves the CSP flow checkpoints of `autoperi_model.Generator`. A checkpoint that
can do de novo generation plugs in as another Engine with `info.supports_de_novo = True` (it
receives chunks whose `de_novo` is set); `load_engine` picks the engine of a checkpoint.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from autoperi_model import CrystalBatch, FlowModel, Generator
from xtal import Crystal, Provenance

SOURCE = "sampler"


@dataclasses.dataclass(frozen=True)
class DeNovoSpec:
    """A de novo task: atoms per cell in [min_atoms, max_atoms]; species from `elements`."""

    min_atoms: int
    max_atoms: int
    elements: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Chunk:
    """Samples `indices` of one request (the unit of batching), attempt `attempt` of each.

    cells: one atomic-number array (n_i,) per sample (CSP); empty for de novo, where
    `de_novo` is set and len(indices) samples are wanted.
    """

    seed: int
    indices: tuple[int, ...]
    steps: int
    sampler: str
    cells: tuple[np.ndarray, ...] = ()
    de_novo: DeNovoSpec | None = None
    deadline: float | None = None  # time.monotonic() after which the chunk is not started
    attempt: int = 0  # regeneration round (0: first try); part of each sample's seed

    @property
    def num_atoms(self) -> int:
        """Atoms this chunk adds to a batch (the batching cost; de novo counts its maximum)."""
        if self.de_novo is not None:
            return len(self.indices) * self.de_novo.max_atoms
        return int(sum(len(c) for c in self.cells))

    def retry(self, positions: Sequence[int]) -> Chunk:
        """The samples at `positions` (into `indices`) again, in the next attempt."""
        cells = tuple(self.cells[p] for p in positions) if self.cells else ()
        indices = tuple(self.indices[p] for p in positions)
        return dataclasses.replace(self, indices=indices, cells=cells, attempt=self.attempt + 1)


@dataclasses.dataclass(frozen=True)
class EngineInfo:
    """What an engine serves (mirrors GetSamplerInfoResponse)."""

    checkpoint_id: str
    samplers: tuple[str, ...]
    default_sampler: str
    default_steps: int
    max_z: int
    supports_csp: bool = True
    supports_de_novo: bool = False
    conditions: tuple[str, ...] = ()


class Engine(Protocol):
    """A loaded checkpoint that generates crystals for batches of chunks."""

    info: EngineInfo

    def nfe(self, sampler: str, steps: int) -> int:
        """Network evaluations per sample of `steps` steps of `sampler`."""
        ...

    def generate(self, chunks: Sequence[Chunk]) -> list[list[Crystal]]:
        """One list of crystals per chunk, in chunk order (sample order within a chunk)."""
        ...


def sample_seed(seed: int, index: int, attempt: int = 0) -> int:
    """The torch seed of sample `index` (attempt `attempt`) of a request with `seed` (a
    SeedSequence mix, < 2^63)."""
    entropy = [seed, index] if attempt == 0 else [seed, index, attempt]
    state = np.random.SeedSequence(entropy).generate_state(2, dtype=np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


def crystal_id(checkpoint_id: str, seed: int, index: int) -> str:
    """The id of sample `index` of a request: checkpoint, seed and sample index."""
    return f"{checkpoint_id}-{seed}-{index}"


class _GivenBase:
    """A FieldProcess whose base sample is given (per-sample seeded noise); the rest delegates."""

    def __init__(self, process, base: torch.Tensor) -> None:
        self._process = process
        self._base = base
        self.key = process.key

    def sample_base(self, batch: CrystalBatch, generator: torch.Generator) -> torch.Tensor:
        return self._base

    def __getattr__(self, name: str):
        return getattr(self._process, name)


class FlowEngine:
    """CSP with a flow-matching `Generator` (Euler / Heun ODE samplers)."""

    def __init__(self, generator: Generator) -> None:
        self.generator = generator
        config = generator.manifest.config
        self.info = EngineInfo(
            checkpoint_id=generator.checkpoint_id,
            samplers=("euler", "heun"),
            default_sampler=config.sample.sampler,
            default_steps=config.sample.steps,
            max_z=config.backbone.max_z,
        )

    def nfe(self, sampler: str, steps: int) -> int:
        return steps * (2 if sampler == "heun" else 1)

    def generate(self, chunks: Sequence[Chunk]) -> list[list[Crystal]]:
        """Chunks grouped by (steps, sampler); each group is one batched ODE integration."""
        out: dict[int, list[Crystal]] = {}
        order = sorted(range(len(chunks)), key=lambda i: (chunks[i].steps, chunks[i].sampler))
        for _, group in itertools.groupby(
            order, key=lambda i: (chunks[i].steps, chunks[i].sampler)
        ):
            idx = list(group)
            crystals = self._integrate([chunks[i] for i in idx])
            out.update(zip(idx, crystals, strict=True))
        return [out[i] for i in range(len(chunks))]

    def _integrate(self, chunks: Sequence[Chunk]) -> list[list[Crystal]]:
        """All samples of `chunks` (same steps and sampler) in one model.sample call."""
        if any(c.de_novo is not None for c in chunks):
            raise ValueError(f"checkpoint {self.info.checkpoint_id} does not support de novo")
        cells = [cell for c in chunks for cell in c.cells]
        seeds = [sample_seed(c.seed, i, c.attempt) for c in chunks for i in c.indices]
        template = _template(cells)
        model = self.generator.model
        base = self._base_noise(model, cells, seeds)
        view = FlowModel(
            model.backbone,
            {k: _GivenBase(p, base[k]) for k, p in model.processes.items()},
            model.weights,
        )
        first = chunks[0]
        anneal = self.generator.manifest.config.sample.anneal
        state, nfe = view.sample(template, first.steps, first.sampler, torch.Generator(), anneal)
        rows = iter(state.split())
        return [self._crystals(c, rows, nfe) for c in chunks]

    @staticmethod
    def _base_noise(model: FlowModel, cells: list, seeds: list[int]) -> dict[str, torch.Tensor]:
        """Per field, the base samples of every cell concatenated (each from its own seed)."""
        parts: dict[str, list[torch.Tensor]] = {k: [] for k in model.processes}
        for cell, seed in zip(cells, seeds, strict=True):
            gen, one = torch.Generator().manual_seed(seed), _template([cell])
            for key, process in model.processes.items():
                parts[key].append(process.sample_base(one, gen))
        return {k: torch.cat(v) for k, v in parts.items()}

    def _crystals(self, chunk: Chunk, rows, nfe: int) -> list[Crystal]:
        cid = self.info.checkpoint_id
        meta = {"nfe": float(nfe), "steps": float(chunk.steps)}
        out = []
        for index in chunk.indices:
            lat, frac, z = next(rows)
            prov = Provenance(source=SOURCE, record=f"{chunk.seed}:{index}", generator=cid)
            ident = crystal_id(cid, chunk.seed, index)
            out.append(Crystal(lat, frac % 1.0, z, properties=meta, id=ident, provenance=prov))
        return out


def _template(cells: Sequence[np.ndarray]) -> CrystalBatch:
    """A batch with the given atomic numbers (n_i,) and placeholder geometry."""
    return CrystalBatch.from_arrays(
        [np.eye(3)] * len(cells), [np.zeros((len(z), 3)) for z in cells], list(cells)
    )


def load_engine(path: str | Path) -> Engine:
    """The engine of the checkpoint directory `path` (CSP flow checkpoints today)."""
    return FlowEngine(Generator.from_checkpoint(path))
