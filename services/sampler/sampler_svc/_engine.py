"""Sampling engines: what a sampler deployment calls to turn batched work into crystals.

An `Engine` wraps one loaded checkpoint. The deployment merges the `Chunk`s of many requests
(cells of one request with one seed, steps and sampler) into one `Engine.generate` call; the
engine returns one crystal list per chunk. Sample i of a request is integrated from base noise
drawn from its own generator seeded by (seed, i) (`sample_seed`).

`FlowEngine` serves the CSP flow checkpoints of `autoperi_model.Generator`: results do not
depend on how requests were batched, so the same request gives the same crystals whether it ran
alone or merged with others (up to float rounding of batched matrix products).

`DeNovoEngine` serves `task: dng` checkpoints (`info.supports_de_novo`, not `supports_csp`):
chunks with `de_novo` set; each sample's atom count is drawn from the training histogram
restricted to the requested range and its types are revealed by the model's masked jumps,
restricted to the requested elements. Atom counts and base noise are per sample as above, but
the jumps of a batch share one generator, so de novo crystals are reproducible for the same
request run alone and may differ when it was merged with other requests (see `DeNovoEngine`).

`load_engine` picks the engine of a checkpoint.
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
from pymatgen.core import Element
from xtal import Crystal, Provenance

SOURCE = "sampler"
TYPES = "atomic_numbers"  # the CrystalBatch field a de novo model generates too


@dataclasses.dataclass(frozen=True)
class DeNovoSpec:
    """A de novo task: atoms per cell in [min_atoms, max_atoms]; species from `elements`.

    min_atoms 0 means 1 and max_atoms 0 no upper bound (the training histogram's largest count);
    `validate` narrows the range to the counts with training mass, so a validated spec's
    max_atoms is the largest cell it can give (what `Chunk.num_atoms` counts). Empty
    `elements`: any element the model knows.
    """

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


def sample_seed(seed: int, index: int, attempt: int = 0) -> int:
    """The torch seed of sample `index` (attempt `attempt`) of a request with `seed` (a
    SeedSequence mix, < 2^63)."""
    return _mix([seed, index] if attempt == 0 else [seed, index, attempt])


def _mix(entropy: Sequence[int]) -> int:
    """A torch seed (< 2^63) mixed from non-negative integers by a SeedSequence."""
    state = np.random.SeedSequence(list(entropy)).generate_state(2, dtype=np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


def crystal_id(checkpoint_id: str, seed: int, index: int) -> str:
    """The id of sample `index` of a request: checkpoint, seed and sample index."""
    return f"{checkpoint_id}-{seed}-{index}"


def element_numbers(elements: Sequence[str], max_z: int) -> tuple[int, ...]:
    """The sorted atomic numbers of element symbols; ValueError naming unknown symbols or
    elements beyond Z = `max_z`."""
    unknown = [s for s in elements if not Element.is_valid_symbol(s)]
    if unknown:
        names = ", ".join(map(repr, unknown))
        raise ValueError(f"de novo elements has unknown symbols: {names}")
    numbers = {s: Element(s).Z for s in elements}
    beyond = [s for s, z in numbers.items() if z > max_z]
    if beyond:
        raise ValueError(f"de novo elements {', '.join(beyond)} are beyond Z = {max_z}")
    return tuple(sorted(set(numbers.values())))


def atom_count_weights(counts: Sequence[int], lo: int, hi: int) -> torch.Tensor:
    """The histogram `counts` (crystals with n atoms at index n) restricted to [lo, hi] atoms,
    float64 (len(counts),); ValueError naming the range when it holds no training crystal."""
    weights = torch.tensor(counts, dtype=torch.float64)
    n = torch.arange(len(weights))
    inside = torch.where((n >= lo) & (n <= hi), weights, 0.0)
    if not weights.sum() > 0:
        raise ValueError("the checkpoint has no atom-count histogram for de novo generation")
    if not inside.sum() > 0:
        have = weights.nonzero()
        raise ValueError(
            f"no training crystal has {lo}..{hi} atoms (the training cells have "
            f"{int(have.min())}..{int(have.max())} atoms): widen min_atoms / max_atoms"
        )
    return inside


def atom_count_range(counts: Sequence[int], lo: int, hi: int) -> tuple[int, int]:
    """The fewest and most atoms in [lo, hi] with training mass (ValueError if none)."""
    have = atom_count_weights(counts, lo, hi).nonzero()
    return int(have.min()), int(have.max())


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


class _AllowedTypes:
    """A type process whose logits (N, max_z + 1) are -inf where `allowed` (N, max_z + 1) is
    False, so its jumps and clean estimates only give allowed types; the rest delegates."""

    def __init__(self, process, allowed: torch.Tensor) -> None:
        self._process = process
        self._allowed = allowed
        self.key = process.key

    def project(self, raw: torch.Tensor, batch: CrystalBatch) -> torch.Tensor:
        return self._process.project(raw, batch).masked_fill(~self._allowed, float("-inf"))

    def __getattr__(self, name: str):
        return getattr(self._process, name)


class FlowEngine:
    """CSP with a flow-matching `Generator` (Euler / Heun ODE samplers)."""

    def __init__(self, generator: Generator) -> None:
        self.generator = generator
        self.info = _info(generator, supports_csp=True, supports_de_novo=False)

    def nfe(self, sampler: str, steps: int) -> int:
        return steps * (2 if sampler == "heun" else 1)

    def generate(self, chunks: Sequence[Chunk]) -> list[list[Crystal]]:
        """Chunks grouped by (steps, sampler); each group is one batched ODE integration."""
        for chunk in chunks:
            self._check(chunk)
        out: dict[int, list[Crystal]] = {}
        order = sorted(range(len(chunks)), key=lambda i: (chunks[i].steps, chunks[i].sampler))
        for _, group in itertools.groupby(
            order, key=lambda i: (chunks[i].steps, chunks[i].sampler)
        ):
            idx = list(group)
            crystals = self._integrate([chunks[i] for i in idx])
            out.update(zip(idx, crystals, strict=True))
        return [out[i] for i in range(len(chunks))]

    def _check(self, chunk: Chunk) -> None:
        """ValueError for a chunk this engine cannot serve."""
        if chunk.de_novo is not None:
            raise ValueError(f"checkpoint {self.info.checkpoint_id} does not support de novo")

    def _integrate(self, chunks: Sequence[Chunk]) -> list[list[Crystal]]:
        """All samples of `chunks` (same steps and sampler) in one model.sample call."""
        cells = [cell for c in chunks for cell in c.cells]
        return self._sample(chunks, cells, _generators(chunks), torch.Generator())

    def _sample(
        self,
        chunks: Sequence[Chunk],
        cells: list[np.ndarray],
        gens: list[torch.Generator],
        jumps: torch.Generator,
        allowed: torch.Tensor | None = None,
    ) -> list[list[Crystal]]:
        """Integrate `cells` (one per sample of `chunks`, in order) in one model.sample call:
        cell k from base noise drawn next from gens[k]; random jumps draw from `jumps`;
        `allowed` (N, max_z + 1) bool restricts each atom's types (None: no restriction)."""
        model = self.generator.model
        base = _base_noise(model, cells, gens)
        processes = {k: _GivenBase(p, base[k]) for k, p in model.processes.items()}
        if allowed is not None:
            processes[TYPES] = _AllowedTypes(processes[TYPES], allowed)
        view = FlowModel(model.backbone, processes, model.weights)
        first = chunks[0]
        anneal = self.generator.manifest.config.sample.anneal
        template = _template(cells)
        state, nfe = view.sample(template, first.steps, first.sampler, jumps, anneal)
        rows = iter(state.split())
        return [self._crystals(c, rows, nfe) for c in chunks]

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


class DeNovoEngine(FlowEngine):
    """De novo generation with a `task: dng` flow `Generator`: per sample, the atom count is
    drawn from the training histogram restricted to [min_atoms, max_atoms], every atom starts
    masked and the model's type jumps reveal its type (restricted to the chunk's `elements`)
    while the ODE integrates positions and lattice. No CSP: the types are always generated.

    Determinism: sample i draws its atom count and then its base noise from its own generator
    seeded by sample_seed(seed, i, attempt), so counts never depend on batching. The type jumps
    of one batch draw from one generator seeded from the sample seeds of all its chunks (in
    batch order): the same request run alone gives the same crystals, but merged with other
    requests (or split into batches differently) its types, and so its structures, may differ.
    """

    def __init__(self, generator: Generator) -> None:
        if not generator.is_de_novo:
            raise ValueError(f"checkpoint {generator.checkpoint_id} is not a task: dng model")
        self.generator = generator
        self.info = _info(generator, supports_csp=False, supports_de_novo=True)

    def _check(self, chunk: Chunk) -> None:
        self._plan(chunk)

    def _plan(self, chunk: Chunk) -> tuple[torch.Tensor, torch.Tensor]:
        """The chunk's atom-count weights (len(atom_counts),) and allowed types (max_z + 1,)
        bool; ValueError with the reason for a chunk this checkpoint cannot serve."""
        task, info = chunk.de_novo, self.info
        if task is None:
            raise ValueError(
                f"checkpoint {info.checkpoint_id} is a de novo model and does not support CSP"
            )
        hi = task.max_atoms or len(info.atom_counts)
        weights = atom_count_weights(info.atom_counts, max(task.min_atoms, 1), hi)
        allowed = torch.ones(info.max_z + 1, dtype=torch.bool)
        if task.elements:
            allowed = torch.zeros_like(allowed)
            allowed[list(element_numbers(task.elements, info.max_z))] = True
        return weights, allowed

    def _integrate(self, chunks: Sequence[Chunk]) -> list[list[Crystal]]:
        """Draw each sample's atom count, then integrate all samples in one model.sample call."""
        gens, cells, rows = _generators(chunks), [], []
        for chunk, chunk_gens in zip(chunks, _per_chunk(chunks, gens), strict=True):
            weights, allowed = self._plan(chunk)
            for gen in chunk_gens:
                n = int(torch.multinomial(weights, 1, generator=gen))
                cells.append(np.zeros(n, dtype=np.int64))  # placeholders: the base is all masks
                rows.append(allowed.expand(n, -1))
        restrict = any(c.de_novo.elements for c in chunks)
        jumps = torch.Generator().manual_seed(_mix(_seeds(chunks)))
        return self._sample(chunks, cells, gens, jumps, torch.cat(rows) if restrict else None)


def _info(generator: Generator, supports_csp: bool, supports_de_novo: bool) -> EngineInfo:
    manifest = generator.manifest
    return EngineInfo(
        checkpoint_id=generator.checkpoint_id,
        samplers=("euler", "heun"),
        default_sampler=manifest.config.sample.sampler,
        default_steps=manifest.config.sample.steps,
        max_z=manifest.config.backbone.max_z,
        supports_csp=supports_csp,
        supports_de_novo=supports_de_novo,
        atom_counts=tuple(manifest.num_atoms_counts),
    )


def _seeds(chunks: Sequence[Chunk]) -> list[int]:
    """The seed of every sample of `chunks`, in order."""
    return [sample_seed(c.seed, i, c.attempt) for c in chunks for i in c.indices]


def _generators(chunks: Sequence[Chunk]) -> list[torch.Generator]:
    """One generator per sample of `chunks`, seeded by its sample seed."""
    return [torch.Generator().manual_seed(s) for s in _seeds(chunks)]


def _per_chunk(chunks: Sequence[Chunk], items: list) -> list[list]:
    """`items` (one per sample of `chunks`, in order) split by chunk."""
    it = iter(items)
    return [[next(it) for _ in c.indices] for c in chunks]


def _base_noise(
    model: FlowModel, cells: list[np.ndarray], gens: list[torch.Generator]
) -> dict[str, torch.Tensor]:
    """Per field, the base samples of every cell concatenated (each from its own generator)."""
    parts: dict[str, list[torch.Tensor]] = {k: [] for k in model.processes}
    for cell, gen in zip(cells, gens, strict=True):
        one = _template([cell])
        for key, process in model.processes.items():
            parts[key].append(process.sample_base(one, gen))
    return {k: torch.cat(v) for k, v in parts.items()}


def _template(cells: Sequence[np.ndarray]) -> CrystalBatch:
    """A batch with the given atomic numbers (n_i,) and placeholder geometry."""
    return CrystalBatch.from_arrays(
        [np.eye(3)] * len(cells), [np.zeros((len(z), 3)) for z in cells], list(cells)
    )


def load_engine(path: str | Path) -> Engine:
    """The engine of the checkpoint directory `path`: `DeNovoEngine` for a task: dng
    checkpoint, `FlowEngine` (CSP) otherwise."""
    generator = Generator.from_checkpoint(path)
    return DeNovoEngine(generator) if generator.is_de_novo else FlowEngine(generator)
