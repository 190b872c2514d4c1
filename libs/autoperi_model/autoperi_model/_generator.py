"""`Generator`: the one way to sample crystals from a checkpoint (services, CLI and notebooks).

`Generator.from_checkpoint(path, tasks=..., processes=...)` loads any registered checkpoint kind
(`_kinds`) and refuses one of the wrong task or process with a clear message. Every generator
answers `sample(specs)`: one crystal per `SampleSpec` (per-sample seed, CSP cell or de novo with
element restrictions and an atom-count range, conditions). `generate_csp`, `generate_types` and
`generate_dng` build specs for the common requests; `restore_lattices` serves task lattice.

`ModelGenerator` serves the checkpoints this library trains (kinds csp/flow, csp/diffusion,
dng/flow, lattice/flow). De novo: types are masked to `elements`; `required_elements` are
revealed on one atom each at t = 0 (the type flow fills in the rest given them); a space group is
refused (these models are not symmetry-conditioned). Sample i's atom count and base noise
are drawn from its own generator seeded by its spec's seed, so its crystal does not depend on
the batch it ran in, except where a process draws noise while integrating (de novo type jumps,
DDPM steps): that noise comes from one generator per batch, seeded by `noise_seed` or by the
batch's sample seeds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from pymatgen.core import Composition
from xtal import Crystal, Provenance

from autoperi_model._batch import CrystalBatch
from autoperi_model._checkpoint import Manifest, load_weights
from autoperi_model._flow import build_model
from autoperi_model._kinds import CheckpointMismatch, load_generator, register_kind
from autoperi_model._model import GenerativeModel
from autoperi_model._sampling import (
    SampleSpec,
    atom_count_weights,
    check_required,
    mix_seeds,
    parse_composition,
    sample_seed,
)
from autoperi_model._types import MASK


class Generator:
    """Samples crystals from one loaded checkpoint (see the module notes).

    Subclasses set `kind`, `tasks` ({"csp", "dng", "lattice"} or new ones), the sampler
    description (`samplers`, `default_sampler`, `default_steps`, `max_z`, `atom_counts`,
    `conditions`) and implement `sample` (and `restore_lattices` for task lattice).
    """

    kind: str = ""  # the registered kind, e.g. "csp/flow"
    tasks: frozenset[str] = frozenset()
    samplers: tuple[str, ...] = ()  # sampler names `sample` accepts
    default_sampler: str = ""
    default_steps: int = 0
    max_z: int = 0  # the largest atomic number it can place
    atom_counts: tuple[int, ...] = ()  # de novo: training crystals with n atoms at index n
    conditions: tuple[str, ...] = ()  # properties a SampleSpec may condition on

    def __init__(self, checkpoint_id: str) -> None:
        self.checkpoint_id = checkpoint_id

    @staticmethod
    def from_checkpoint(
        path: str | Path,
        tasks: Sequence[str] | None = None,
        processes: Sequence[str] | None = None,
    ) -> Generator:
        """Load a checkpoint directory; CheckpointMismatch if it serves none of `tasks` or its
        process is not in `processes` (see `load_generator`)."""
        return load_generator(path, tasks, processes)

    def sample(
        self,
        specs: Sequence[SampleSpec],
        steps: int | None = None,
        sampler: str | None = None,
        batch_size: int = 512,
        noise_seed: int | None = None,
    ) -> list[Crystal]:
        """One crystal per spec, in order (ValueError naming what the checkpoint cannot serve)."""
        raise NotImplementedError

    def restore_lattices(
        self, crystals: Sequence[Crystal], steps: int | None = None, sampler: str | None = None,
        seed: int = 0, batch_size: int = 512,
    ) -> list[Crystal]:  # fmt: skip
        """The crystals with their lattices restored (task lattice)."""
        raise self.mismatch("lattice")

    def mismatch(self, task: str) -> CheckpointMismatch:
        """The error for a request of `task` this checkpoint does not serve."""
        serves = ", ".join(sorted(self.tasks))
        return CheckpointMismatch(
            f"checkpoint {self.checkpoint_id} is a {self.kind} model (task {serves}); it cannot "
            f"serve {task}: use a task {task} checkpoint"
        )

    def check(self, specs: Sequence[SampleSpec]) -> None:
        """ValueError naming the first spec this checkpoint cannot serve: a task it does not
        serve, a condition it does not take (a space group asked of a model that is not
        symmetry-conditioned is refused, never ignored), or `required_elements` that break
        `check_required`."""
        for i, spec in enumerate(specs):
            task = "dng" if spec.de_novo else "csp"
            if task not in self.tasks:
                raise self.mismatch(task)
            unknown = sorted(set(spec.conditions) - set(self.conditions))
            if unknown:
                takes = ", ".join(self.conditions) or "none"
                why = "; it is not symmetry-conditioned" if "space_group_number" in unknown else ""
                raise ValueError(
                    f"sample {i}: checkpoint {self.checkpoint_id} ({self.kind}) takes no "
                    f"condition {', '.join(unknown)} (conditions it takes: {takes}){why}"
                )
            try:
                check_required(spec)
            except ValueError as exc:
                raise ValueError(f"sample {i}: {exc}") from None

    def generate_csp(
        self,
        compositions: Sequence[str | Composition],
        n_per_composition: int = 1,
        steps: int | None = None,
        sampler: str | None = None,
        seed: int = 0,
        batch_size: int = 512,
    ) -> list[Crystal]:
        """`n_per_composition` crystals per composition (grouped by composition, in order);
        sample i is seeded by `sample_seed(seed, i)`."""
        cells = [parse_composition(c) for c in compositions]
        types = [z for z in cells for _ in range(n_per_composition)]
        indices = [j for _ in cells for j in range(n_per_composition)]
        return self.generate_types(types, steps, sampler, seed, batch_size, indices)

    def generate_types(
        self,
        types: Sequence[np.ndarray],
        steps: int | None = None,
        sampler: str | None = None,
        seed: int = 0,
        batch_size: int = 512,
        indices: Sequence[int] | None = None,
    ) -> list[Crystal]:
        """One CSP crystal per atomic-number array (n_i,); sample i seeded by
        `sample_seed(seed, i)`, `indices[i]` its `SampleSpec.index` (its position among the
        samples asked for one query)."""
        specs = [
            SampleSpec(sample_seed(seed, i), np.asarray(z), index=indices[i] if indices else None)
            for i, z in enumerate(types)
        ]
        return self.sample(specs, steps, sampler, batch_size)

    def serves(self, atomic_numbers: np.ndarray) -> bool:
        """Whether CSP of this cell can be served (a template checkpoint without a fallback
        serves only cells some template fits)."""
        return "csp" in self.tasks

    def generate_dng(
        self,
        n: int,
        steps: int | None = None,
        sampler: str | None = None,
        seed: int = 0,
        batch_size: int = 512,
        elements: tuple[int, ...] = (),
        atoms: tuple[int, int] = (1, 0),
        required: tuple[int, ...] = (),
        conditions: Mapping[str, float] | None = None,
    ) -> list[Crystal]:
        """`n` de novo crystals (types among `elements`, each of `required` in every one, atom
        counts in `atoms` = (min, max), max 0: unbounded; `conditions` such as
        {"space_group_number": 62} for a checkpoint that takes them); sample i seeded by
        `sample_seed(seed, i)`."""
        if n < 1:
            raise ValueError(f"need n >= 1 de novo samples, got {n}")
        specs = [
            SampleSpec(
                sample_seed(seed, i), None, elements, atoms[0], atoms[1],
                conditions=dict(conditions or {}), required_elements=required,
            )
            for i in range(n)
        ]  # fmt: skip
        return self.sample(specs, steps, sampler, batch_size)


class ModelGenerator(Generator):
    """A checkpoint of this library's `GenerativeModel` (EMA weights, CPU, float32)."""

    def __init__(self, model: GenerativeModel, manifest: Manifest, checkpoint_id: str = "") -> None:
        super().__init__(checkpoint_id or manifest.weights_sha256[:12])
        self.model = model.eval()
        self.manifest = manifest
        config = manifest.config
        self.kind = f"{config.task}/{config.process}"
        self.tasks = frozenset({config.task})
        self.samplers = tuple(model.samplers)
        self.default_sampler = config.sample.sampler
        self.default_steps = config.sample.steps
        self.max_z = config.backbone.max_z
        self.atom_counts = tuple(manifest.num_atoms_counts)

    @staticmethod
    def load(path: Path) -> ModelGenerator:
        """Load a checkpoint directory (weights verified against the manifest's sha256)."""
        weights, manifest = load_weights(Path(path))
        model = build_model(manifest.config, manifest.volume_per_atom)
        model.load_state_dict(weights)
        return ModelGenerator(model, manifest)

    def sample(self, specs, steps=None, sampler=None, batch_size=512, noise_seed=None):
        """One crystal per spec, in order; unset steps and sampler come from the checkpoint."""
        self.check(specs)
        steps, sampler = steps or self.default_steps, sampler or self.default_sampler
        gens = [torch.Generator().manual_seed(s.seed) for s in specs]
        cells = [self._cell(s, g) for s, g in zip(specs, gens, strict=True)]
        out: list[Crystal] = []
        for start in range(0, len(specs), batch_size):
            part = slice(start, start + batch_size)
            seed = mix_seeds([s.seed for s in specs[part]]) if noise_seed is None else noise_seed
            allowed = self._allowed(specs[part], cells[part])
            template = _template(cells[part])
            state = _with_required(self.model.draw_base(template, gens[part]), specs[part])
            noise = torch.Generator().manual_seed(seed)
            anneal = self.manifest.config.sample.anneal if sampler != "ddpm" else {}
            state, nfe = self.model.sample_from(state, steps, sampler, noise, anneal, allowed)
            out.extend(self._to_crystals(state, nfe, sampler, steps))
        return out

    def _cell(self, spec: SampleSpec, gen: torch.Generator) -> np.ndarray:
        """The spec's atomic numbers (n,), or n mask tokens with n drawn from the training
        histogram within its range (de novo); ValueError for Z beyond the model's."""
        if not spec.de_novo:
            cell = np.asarray(spec.atomic_numbers, dtype=np.int64)
            if len(cell) == 0 or cell.min() < 1 or cell.max() > self.max_z:
                raise ValueError(f"a CSP cell needs 1 or more atoms with Z in 1..{self.max_z}")
            return cell
        if any(z < 1 or z > self.max_z for z in (*spec.elements, *spec.required_elements)):
            raise ValueError(f"de novo elements must have Z in 1..{self.max_z}")
        hi = spec.max_atoms or len(self.atom_counts)
        lo = max(spec.min_atoms, len(spec.required_elements), 1)
        weights = atom_count_weights(self.atom_counts, lo, hi)
        return np.full(int(torch.multinomial(weights, 1, generator=gen)), MASK, dtype=np.int64)

    def _allowed(self, specs: Sequence[SampleSpec], cells: list[np.ndarray]) -> torch.Tensor | None:
        """(N, max_z + 1) bool: the types each atom may take, None when no spec restricts."""
        if not any(s.elements for s in specs):
            return None
        rows = []
        for spec, cell in zip(specs, cells, strict=True):
            row = torch.ones(self.max_z + 1, dtype=torch.bool)
            if spec.elements:
                row = torch.zeros_like(row)
                row[list(spec.elements)] = True
            rows.append(row.expand(len(cell), -1))
        return torch.cat(rows)

    def restore_lattices(self, crystals, steps=None, sampler=None, seed=0, batch_size=512):
        """The crystals with their lattices restored (EMPNN's lattice denoising, or
        reconstruction when given cubic cells): fractional coordinates and atoms are kept, the
        lattice flows from the given cell at t = 0 to t = 1. Needs a task lattice checkpoint."""
        if "lattice" not in self.tasks:
            raise self.mismatch("lattice")
        steps = steps or self.default_steps
        sampler = sampler or self.default_sampler
        gen = torch.Generator().manual_seed(seed)
        out: list[Crystal] = []
        for start in range(0, len(crystals), batch_size):
            chunk = crystals[start : start + batch_size]
            state = CrystalBatch.from_arrays(
                [c.lattice for c in chunk],
                [c.frac_coords for c in chunk],
                [c.atomic_numbers for c in chunk],
            )
            restored, nfe = self.model.integrate(state, steps, sampler, gen)
            out.extend(self._to_crystals(restored, nfe, sampler, steps))
        return out

    def _to_crystals(
        self, state: CrystalBatch, nfe: int, sampler: str, steps: int
    ) -> list[Crystal]:
        meta = {"nfe": float(nfe), "steps": float(steps)}
        prov = Provenance(source=f"sampler:{sampler}", generator=self.checkpoint_id)
        return [
            Crystal(
                a.lattice, a.frac_coords % 1.0, a.atomic_numbers, properties=meta, provenance=prov
            )
            for a in state.arrays()
        ]


def _with_required(state: CrystalBatch, specs: Sequence[SampleSpec]) -> CrystalBatch:
    """The base `state` with crystal i's first atoms revealed as its spec's required elements
    (one atom each; the rest stay masked), so the type flow generates the other atoms given
    them and every sample holds them. Which atoms does not matter: the base positions are
    i.i.d. and the model is permutation-equivariant."""
    if not any(s.required_elements for s in specs):
        return state
    types = state.atomic_numbers.clone()
    starts = (torch.cumsum(state.num_atoms, 0) - state.num_atoms).tolist()
    for start, spec in zip(starts, specs, strict=True):
        required = sorted(set(spec.required_elements))
        types[start : start + len(required)] = torch.tensor(required, dtype=types.dtype)
    return state.replace(atomic_numbers=types)


def _template(cells: Sequence[np.ndarray]) -> CrystalBatch:
    """A batch with the given atomic numbers (n_i,) and placeholder geometry."""
    return CrystalBatch.from_arrays(
        [np.eye(3)] * len(cells), [np.zeros((len(z), 3)) for z in cells], list(cells)
    )


for _task, _process in (
    ("csp", "flow"),
    ("csp", "diffusion"),
    ("dng", "flow"),
    ("lattice", "flow"),
):
    register_kind(f"{_task}/{_process}", ModelGenerator.load, tasks=(_task,))
