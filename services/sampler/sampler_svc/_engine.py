"""The sampling engine: what a sampler deployment calls to turn batched work into crystals.

`GeneratorEngine` wraps one `autoperi_model.Generator` (the only way to sample). The deployment
merges the `Chunk`s of many requests (cells of one request with one seed, steps and sampler)
into one `Engine.generate` call; the engine turns each sample into a `SampleSpec` seeded by
`sample_seed(seed, i, attempt)` and returns one crystal list per chunk. A sample's atom count and
base noise come from its own seed, so the same request gives the same crystals whether it ran
alone or merged with others (up to float rounding of batched matrix products); noise drawn while
integrating (de novo type jumps) comes from one generator per batch, seeded from the sample seeds
of all its chunks, so de novo crystals are reproducible for the same request run alone.

`load_engine` loads a checkpoint for the sampler: one that serves CSP or de novo generation
(a task lattice checkpoint is refused with the reason, before any weights load; weights that are
not a plain tensor file are refused with `autoperi_model.UnsafeCheckpoint`).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
from autoperi_model import (
    Generator,
    SampleSpec,
    atom_count_weights,
    element_numbers,
    sample_seed,
)
from xtal import Crystal, Provenance

SOURCE = "sampler"


@dataclasses.dataclass(frozen=True)
class DeNovoSpec:
    """A de novo task: atoms per cell in [min_atoms, max_atoms]; species from `elements`, each
    of `required` in every sample.

    min_atoms 0 means 1 and max_atoms 0 no upper bound (the training histogram's largest count);
    `validate` narrows the range to the counts with training mass, so a validated spec's
    max_atoms is the largest cell it can give (what `Chunk.num_atoms` counts). Empty
    `elements`: any element the model knows; empty `required`: none.
    """

    min_atoms: int
    max_atoms: int
    elements: tuple[str, ...] = ()
    required: tuple[str, ...] = ()


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
    conditions: Mapping[str, float] = dataclasses.field(default_factory=dict)  # e.g. space group

    @property
    def num_atoms(self) -> int:
        """Atoms this chunk adds to a batch (the batching cost): de novo counts max_atoms per
        sample (the largest cell a validated spec can give)."""
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
    """What an engine serves (mirrors GetSamplerInfoResponse); `atom_counts` is the
    checkpoint's training histogram (crystals with n atoms at index n) that de novo counts are
    drawn from."""

    checkpoint_id: str
    samplers: tuple[str, ...]
    default_sampler: str
    default_steps: int
    max_z: int
    supports_csp: bool = True
    supports_de_novo: bool = False
    conditions: tuple[str, ...] = ()
    atom_counts: tuple[int, ...] = ()


class Engine(Protocol):
    """A loaded checkpoint that generates crystals for batches of chunks."""

    info: EngineInfo

    def nfe(self, sampler: str, steps: int) -> int:
        """Network evaluations per sample of `steps` steps of `sampler`."""
        ...

    def generate(self, chunks: Sequence[Chunk]) -> list[list[Crystal]]:
        """One list of crystals per chunk, in chunk order (sample order within a chunk);
        ValueError, before any sampling, for a chunk the checkpoint cannot serve."""
        ...

    def check(self, chunk: Chunk) -> None:
        """ValueError naming why the checkpoint cannot serve `chunk` (a condition it does not
        take, a request no template satisfies, ...), without sampling."""
        ...


def crystal_id(checkpoint_id: str, seed: int, index: int) -> str:
    """The id of sample `index` of a request: checkpoint, seed and sample index."""
    return f"{checkpoint_id}-{seed}-{index}"


class GeneratorEngine:
    """Serves the chunks of one `Generator`: CSP chunks when it serves task csp, de novo chunks
    (`de_novo` set) when it serves task dng."""

    def __init__(self, generator: Generator) -> None:
        self.generator = generator
        self.info = _info(generator)

    def nfe(self, sampler: str, steps: int) -> int:
        return steps * (2 if sampler == "heun" else 1)

    def check(self, chunk: Chunk) -> None:
        self.generator.check(self._specs(chunk))

    def generate(self, chunks: Sequence[Chunk]) -> list[list[Crystal]]:
        """Chunks grouped by (steps, sampler); each group is one `Generator.sample` call."""
        specs = [self._specs(chunk) for chunk in chunks]
        for chunk_specs in specs:
            self.generator.check(chunk_specs)
        out: dict[int, list[Crystal]] = {}
        order = sorted(range(len(chunks)), key=lambda i: (chunks[i].steps, chunks[i].sampler))
        for (steps, sampler), group in itertools.groupby(
            order, key=lambda i: (chunks[i].steps, chunks[i].sampler)
        ):
            idx = list(group)
            flat = [spec for i in idx for spec in specs[i]]
            crystals = iter(self.generator.sample(flat, steps, sampler, batch_size=len(flat)))
            for i in idx:
                out[i] = [self._tagged(chunks[i], k, next(crystals)) for k in chunks[i].indices]
        return [out[i] for i in range(len(chunks))]

    def _specs(self, chunk: Chunk) -> list[SampleSpec]:
        """One spec per sample of the chunk; ValueError for a chunk the checkpoint cannot
        serve."""
        seeds = [sample_seed(chunk.seed, i, chunk.attempt) for i in chunk.indices]
        task = chunk.de_novo
        if task is None:
            conditions = chunk.conditions
            return [
                SampleSpec(s, cell, conditions=conditions, index=i)
                for s, cell, i in zip(seeds, chunk.cells, chunk.indices, strict=True)
            ]
        if not self.info.supports_de_novo:
            raise ValueError(f"checkpoint {self.info.checkpoint_id} does not support de novo")
        elements = element_numbers(task.elements, self.info.max_z)
        required = element_numbers(task.required, self.info.max_z, "de novo required_elements")
        hi = task.max_atoms or len(self.info.atom_counts)
        lo = max(task.min_atoms, len(required), 1)
        atom_count_weights(self.info.atom_counts, lo, hi)  # the range's check
        return [
            SampleSpec(
                s, None, elements, task.min_atoms, task.max_atoms,
                conditions=chunk.conditions, required_elements=required,
            )
            for s in seeds
        ]  # fmt: skip

    def _tagged(self, chunk: Chunk, index: int, crystal: Crystal) -> Crystal:
        cid = self.info.checkpoint_id
        prov = Provenance(source=SOURCE, record=f"{chunk.seed}:{index}", generator=cid)
        return crystal.replace(id=crystal_id(cid, chunk.seed, index), provenance=prov)


def _info(generator: Generator) -> EngineInfo:
    return EngineInfo(
        checkpoint_id=generator.checkpoint_id,
        samplers=tuple(generator.samplers),
        default_sampler=generator.default_sampler,
        default_steps=generator.default_steps,
        max_z=generator.max_z,
        supports_csp="csp" in generator.tasks,
        supports_de_novo="dng" in generator.tasks,
        conditions=tuple(generator.conditions),
        atom_counts=tuple(generator.atom_counts),
    )


TASKS = ("csp", "dng")  # what a sampler serves: structures for compositions, de novo crystals


def check_servable(path: str | Path) -> None:
    """Load the checkpoint (`load_engine`) in this process, so a bad one is refused, with its
    reason, before anything is deployed. A checkpoint that passed is not loaded again while
    none of its files changed (the launch checks before starting Ray and again when it builds
    the app)."""
    directory = Path(path).resolve()
    stamps = tuple(
        (p.name, p.stat().st_mtime_ns, p.stat().st_size)
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    ) if directory.is_dir() else ()  # fmt: skip
    _check_once(str(directory), stamps)


@functools.lru_cache(maxsize=8)
def _check_once(directory: str, stamps: tuple) -> None:
    load_engine(directory)  # a refusal raises and is not cached


def load_engine(path: str | Path) -> Engine:
    """The engine of the checkpoint directory `path`. Refused with a ValueError saying why:
    `autoperi_model.CheckpointMismatch` (from its manifest, before any weights load) when it
    serves neither CSP nor de novo generation, `autoperi_model.UnsafeCheckpoint` when its
    weights are not a plain tensor file, and when they do not match its manifest."""
    return GeneratorEngine(Generator.from_checkpoint(path, tasks=TASKS))
