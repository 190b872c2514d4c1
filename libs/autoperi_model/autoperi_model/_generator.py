"""`Generator`: the facade that services and the CLI use to sample crystals from a checkpoint."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from pymatgen.core import Composition, Element
from xtal import Crystal, Provenance

from autoperi_model._batch import CrystalBatch
from autoperi_model._checkpoint import Manifest, load_weights
from autoperi_model._flow import Sampler, build_model
from autoperi_model._model import GenerativeModel
from autoperi_model._types import MASK

MAX_ATOMS = 100


def parse_composition(text: str | Composition) -> np.ndarray:
    """Atomic numbers (n,) of one cell of a formula such as "SrTiO3" or "Sr2Ti2O6".

    Raises ValueError naming the problem for unknown elements, fractional amounts, empty or
    oversized cells.
    """
    try:
        comp = text if isinstance(text, Composition) else Composition(str(text))
    except (ValueError, KeyError) as exc:
        raise ValueError(f"cannot parse composition {text!r}: {exc}") from None
    unknown = [str(el) for el in comp if not isinstance(el, Element)]
    if unknown:
        raise ValueError(f"composition {text!r} has unknown elements: {', '.join(unknown)}")
    amounts = {el.Z: amt for el, amt in comp.element_composition.items()}
    if not amounts or any(abs(a - round(a)) > 1e-6 or a <= 0 for a in amounts.values()):
        raise ValueError(f"composition {text!r} needs whole, positive numbers of atoms per cell")
    numbers = np.concatenate([np.full(round(a), z) for z, a in sorted(amounts.items())])
    if len(numbers) > MAX_ATOMS:
        raise ValueError(f"composition {text!r} has {len(numbers)} atoms; at most {MAX_ATOMS}")
    return numbers.astype(np.int64)


class Generator:
    """Crystal structure prediction from a trained checkpoint (EMA weights, CPU, float32)."""

    def __init__(self, model: GenerativeModel, manifest: Manifest, checkpoint_id: str = "") -> None:
        self.model = model.eval()
        self.manifest = manifest
        self.checkpoint_id = checkpoint_id or manifest.weights_sha256[:12]

    @staticmethod
    def from_checkpoint(path: str | Path) -> Generator:
        """Load a checkpoint directory (weights verified against the manifest's sha256)."""
        weights, manifest = load_weights(Path(path))
        model = build_model(manifest.config, manifest.volume_per_atom)
        model.load_state_dict(weights)
        return Generator(model, manifest)

    def generate_csp(
        self,
        compositions: Sequence[str | Composition],
        n_per_composition: int = 1,
        steps: int | None = None,
        sampler: Sampler | None = None,
        seed: int = 0,
        batch_size: int = 512,
        anneal: dict[str, float] | None = None,
    ) -> list[Crystal]:
        """`n_per_composition` crystals per composition (grouped by composition, in order)."""
        cells = [parse_composition(c) for c in compositions]
        max_z = self.manifest.config.backbone.max_z
        for text, cell in zip(compositions, cells, strict=True):
            if cell.max() > max_z:
                raise ValueError(f"composition {text!r} has elements beyond Z = {max_z}")
        types = [z for z in cells for _ in range(n_per_composition)]
        return self.generate_types(types, steps, sampler, seed, batch_size, anneal)

    def generate_types(
        self,
        types: Sequence[np.ndarray],
        steps: int | None = None,
        sampler: Sampler | None = None,
        seed: int = 0,
        batch_size: int = 512,
        anneal: dict[str, float] | None = None,
    ) -> list[Crystal]:
        """One crystal per atomic-number array (n_i,), sampled in batches of `batch_size`.

        Unset sampler settings (steps, sampler, anneal) come from the checkpoint's config.
        """
        if self.task != "csp":
            use = "generate_dng" if self.is_de_novo else "restore_lattices"
            raise ValueError(
                f"checkpoint {self.checkpoint_id} is a task: {self.task} model; use {use}, "
                "or a CSP checkpoint for given compositions"
            )
        return self._sample(types, steps, sampler, seed, batch_size, anneal)

    @property
    def task(self) -> str:
        """The checkpoint's task: csp, dng or lattice."""
        return self.manifest.config.task

    @property
    def is_de_novo(self) -> bool:
        """True for a checkpoint that generates the atom types too (task: dng)."""
        return self.task == "dng"

    def restore_lattices(
        self,
        crystals: Sequence[Crystal],
        steps: int | None = None,
        sampler: Sampler | None = None,
        seed: int = 0,
        batch_size: int = 512,
    ) -> list[Crystal]:
        """The crystals with their lattices restored (EMPNN's lattice denoising, or
        reconstruction when given cubic cells): fractional coordinates and atoms are kept, the
        lattice flows from the given cell at t = 0 to t = 1. Needs a task: lattice checkpoint."""
        if self.task != "lattice":
            raise ValueError(
                f"checkpoint {self.checkpoint_id} is a task: {self.task} model; restoring "
                "lattices needs a task: lattice checkpoint"
            )
        steps = steps or self.manifest.config.sample.steps
        sampler = sampler or self.manifest.config.sample.sampler
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

    def generate_dng(
        self,
        n: int,
        steps: int | None = None,
        sampler: Sampler | None = None,
        seed: int = 0,
        batch_size: int = 512,
    ) -> list[Crystal]:
        """`n` de novo crystals: atom counts drawn from the training histogram (seed `seed`),
        then types, positions and lattice generated jointly."""
        if not self.is_de_novo:
            raise ValueError(
                f"checkpoint {self.checkpoint_id} is a task: {self.task} model; de novo "
                "generation needs a task: dng checkpoint"
            )
        counts = torch.tensor(self.manifest.num_atoms_counts, dtype=torch.float64)
        if n < 1 or counts.sum() <= 0:
            raise ValueError(f"need n >= 1 and an atom-count histogram, got n = {n}")
        gen = torch.Generator().manual_seed(seed)
        sizes = torch.multinomial(counts, n, replacement=True, generator=gen).tolist()
        masked = [np.full(k, MASK, dtype=np.int64) for k in sizes]
        return self._sample(masked, steps, sampler, seed + 1, batch_size, None)

    def _sample(self, types, steps, sampler, seed, batch_size, anneal) -> list[Crystal]:
        """One crystal per atomic-number array (masked atoms are generated); unset settings
        come from the checkpoint's config."""
        steps = steps or self.manifest.config.sample.steps
        sampler = sampler or self.manifest.config.sample.sampler
        anneal = self.manifest.config.sample.anneal if anneal is None else anneal
        gen = torch.Generator().manual_seed(seed)
        out: list[Crystal] = []
        for start in range(0, len(types), batch_size):
            chunk = types[start : start + batch_size]
            template = CrystalBatch.from_arrays(
                [np.eye(3)] * len(chunk), [np.zeros((len(z), 3)) for z in chunk], chunk
            )
            state, nfe = self.model.sample(template, steps, sampler, gen, anneal)
            out.extend(self._to_crystals(state, nfe, sampler, steps))
        return out

    def _to_crystals(
        self, state: CrystalBatch, nfe: int, sampler: str, steps: int
    ) -> list[Crystal]:
        meta = {"nfe": float(nfe), "steps": float(steps)}
        prov = Provenance(source=f"sampler:{sampler}", generator=self.checkpoint_id)
        return [
            Crystal(lat, frac % 1.0, z, properties=meta, provenance=prov)
            for lat, frac, z in state.split()
        ]
