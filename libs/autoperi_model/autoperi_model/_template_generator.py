"""`TemplateGenerator` (checkpoint kind csp/templates): CSP by ranked templates, optionally
refined or regenerated inside the template's space group by a symmetric flow.

A checkpoint directory holds `templates.npz` (the library's idealised crystals with their
operations, prototype ids, the substitution scores and, for a learned ranker, its weights; read
with `allow_pickle=False`), `manifest.json` (kind, ranker, refinement settings, provenance) and,
when a symmetric flow is attached, that flow's `model.pt` and `config.yaml` under `flow/`.

Sampling: the specs of one composition are served in order by its candidates in ranked order
(the first spec gets the best, the second the next, cycling when there are fewer), so k samples
of a composition are k different templates. Without a flow a sample is the substituted template;
with one, the template's space group, Wyckoff positions and elements are kept and the flow
integrates from time `start_time` of the path from its base to the template (0: generate the
lattice and free parameters afresh; close to 1: refine the template), with the spec's seed.

A cell no template fits (no library crystal with its atom count and sorted element counts) is
served by the P1 CSP checkpoint under `fallback/` when there is one (without a space-group
condition, which a P1 flow cannot honour), and is an error otherwise.
"""

from __future__ import annotations

import collections
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from xtal import Crystal, Provenance

from autoperi_model._checkpoint import sha256_file
from autoperi_model._generator import Generator, ModelGenerator
from autoperi_model._kinds import register_kind
from autoperi_model._ranking import TemplateRanker
from autoperi_model._sampling import SampleSpec, mix_seeds
from autoperi_model._symmetry_data import SymmetricCrystals
from autoperi_model._templates import (
    FEATURES,
    MAX_Z,
    Candidate,
    TemplateLibrary,
    composition_key,
)

KIND = "csp/templates"
SPACE_GROUP = "space_group_number"  # the condition: only templates of this space group
LIBRARY_FILE = "templates.npz"
RANKERS = ("mendeleev", "learned")


def save_templates(
    directory: Path,
    library: TemplateLibrary,
    ranker: TemplateRanker | None,
    info: dict,
) -> None:
    """Write a template checkpoint: templates.npz and manifest.json (`info` adds provenance:
    data, metrics, hidden size...); the ranker is "learned" when given, else "mendeleev"."""
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {f"crystals.{k}": v.numpy() for k, v in library.crystals.state().items()}
    arrays["prototype"] = library.prototype
    arrays["substitution"] = library.substitution.astype(np.float32)
    if ranker is not None:
        arrays.update({f"ranker.{k}": v.numpy() for k, v in ranker.state_dict().items()})
    np.savez_compressed(directory / LIBRARY_FILE, **arrays)
    manifest = {
        "kind": KIND,
        "ranker": "learned" if ranker is not None else "mendeleev",
        "features": list(FEATURES),
        "library_sha256": sha256_file(directory / LIBRARY_FILE),
        "num_templates": len(library),
        **info,
    }
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


def load_library(directory: Path) -> tuple[TemplateLibrary, TemplateRanker | None, dict]:
    """The library, ranker (None for the Mendeleev lookup) and manifest of a checkpoint; the
    library file is verified against the manifest's sha256."""
    manifest = json.loads((directory / "manifest.json").read_text())
    path = directory / LIBRARY_FILE
    if sha256_file(path) != manifest.get("library_sha256"):
        raise ValueError(f"{path} does not match the sha256 in its manifest")
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    crystals = SymmetricCrystals(
        **{
            k.split(".", 1)[1]: torch.as_tensor(v)
            for k, v in arrays.items()
            if k.startswith("crystals.")
        }
    )
    library = TemplateLibrary(crystals, arrays["prototype"], arrays["substitution"].astype(float))
    ranker = None
    if manifest.get("ranker") == "learned":
        state = {
            k.split(".", 1)[1]: torch.as_tensor(v)
            for k, v in arrays.items()
            if k.startswith("ranker.")
        }
        ranker = TemplateRanker(len(manifest["features"]), int(manifest.get("hidden", 32)))
        ranker.load_state_dict(state)
    return library, ranker.eval() if ranker else None, manifest


class TemplateGenerator(Generator):
    """CSP from a template checkpoint (see the module notes)."""

    kind = KIND
    tasks = frozenset({"csp"})
    conditions = (SPACE_GROUP,)

    def __init__(
        self, library, ranker, manifest, flow=None, fallback=None, checkpoint_id: str = ""
    ) -> None:
        super().__init__(checkpoint_id or manifest["library_sha256"][:12])
        self.library, self.ranker, self.manifest, self.flow = library, ranker, manifest, flow
        self.fallback = fallback
        self.max_z = MAX_Z
        self.start_time = float(manifest.get("start_time", 0.0))
        # a ranker reads the features it was trained on (a checkpoint may predate newer ones)
        self.ranker_columns = [FEATURES.index(f) for f in manifest.get("features", FEATURES)]
        self.match_known = (
            ranker is not None and FEATURES.index("known_structure") in self.ranker_columns
        )
        if flow is None:
            self.samplers, self.default_sampler, self.default_steps = ("template",), "template", 1
        else:
            self.samplers = tuple(flow.model.samplers)
            self.default_sampler, self.default_steps = flow.default_sampler, flow.default_steps

    @staticmethod
    def load(path: Path) -> TemplateGenerator:
        library, ranker, manifest = load_library(Path(path))
        flow, fallback = (_model_at(Path(path) / name) for name in ("flow", "fallback"))
        if fallback is not None and fallback.kind != "csp/flow":
            raise ValueError(f"{path}/fallback is a {fallback.kind} checkpoint, not csp/flow")
        return TemplateGenerator(library, ranker, manifest, flow, fallback)

    def serves(self, atomic_numbers: np.ndarray) -> bool:
        return self.fallback is not None or composition_key(atomic_numbers) in self.library.keys

    def ranked(self, numbers: np.ndarray) -> list[Candidate]:
        """The candidates of a cell, best first (the ranker's logits, or the Mendeleev cost)."""
        cands = self.library.candidates(numbers, match_known=self.match_known)
        if not cands:
            return []
        features = np.stack([c.features for c in cands])
        if self.ranker is not None:
            scores = self.ranker.score(features[:, self.ranker_columns])
        else:
            scores = -features[:, FEATURES.index("mendeleev_rank")]
        return [cands[i] for i in np.argsort(-scores, kind="stable")]

    def sample(self, specs, steps=None, sampler=None, batch_size=512, noise_seed=None):
        """One crystal per spec (see the module notes); ValueError for a cell that neither a
        template nor the fallback serves."""
        self.check(specs)
        chosen = self._choose(specs)
        fits = [i for i, c in enumerate(chosen) if c is not None]
        rest = [i for i, c in enumerate(chosen) if c is None]
        templated = self._templated(
            [chosen[i] for i in fits], [specs[i] for i in fits], steps, sampler, batch_size
        )
        out = dict(zip(fits, templated, strict=True))
        if rest:
            foreign = sampler is not None and sampler not in self.fallback.samplers  # "template"
            served = self.fallback.sample(
                [specs[i] for i in rest],
                None if foreign else steps,
                None if foreign else sampler,
                batch_size,
            )
            out.update(zip(rest, served, strict=True))
        return [out[i] for i in range(len(specs))]

    def _templated(self, chosen, specs, steps, sampler, batch_size) -> list[Crystal]:
        if self.flow is None:
            return [self._substituted(c) for c in chosen]
        steps, sampler = steps or self.default_steps, sampler or self.default_sampler
        out: list[Crystal] = []
        for start in range(0, len(specs), batch_size):
            part = slice(start, start + batch_size)
            out.extend(self._refined(chosen[part], specs[part], steps, sampler))
        return out

    def _choose(self, specs: Sequence[SampleSpec]) -> list[Candidate | None]:
        """Each spec's template; None for a cell the fallback serves."""
        ranked: dict[tuple, list[Candidate]] = {}
        seen: collections.Counter = collections.Counter()
        chosen = []
        for i, spec in enumerate(specs):
            cell = np.sort(np.asarray(spec.atomic_numbers, dtype=np.int64))
            group = int(spec.conditions.get(SPACE_GROUP, 0))
            key = (*cell.tolist(), -group)
            if key not in ranked:
                ranked[key] = [
                    c for c in self.ranked(cell)
                    if not group or int(self.library.crystals.space_group[c.index]) == group
                ]  # fmt: skip
            if not ranked[key] and self.fallback is not None and not group:
                chosen.append(None)
                continue
            if not ranked[key]:
                wanted = f" in space group {group}" if group else ""
                raise ValueError(
                    f"sample {i}: no template{wanted} in checkpoint {self.checkpoint_id} has "
                    f"the cell stoichiometry of {_formula(cell)} ({len(cell)} atoms)"
                )
            position = seen[key] if spec.index is None else spec.index
            chosen.append(ranked[key][position % len(ranked[key])])
            seen[key] += 1
        return chosen

    def _substituted(self, cand: Candidate) -> Crystal:
        lat, frac, numbers = self._template_arrays(cand)
        info = {"template": float(cand.index), "nfe": 0.0}
        prov = Provenance(source="sampler:template", generator=self.checkpoint_id)
        return Crystal(lat, frac % 1.0, numbers, properties=info, provenance=prov)

    def _template_arrays(self, cand: Candidate):
        lat, numbers, frac = self.library.substituted(cand.index, cand.mapping)
        return lat, frac, numbers

    def _refined(self, cands, specs, steps, sampler) -> list[Crystal]:
        """The flow from each template's base (at `start_time` along the path to it) to t = 1."""
        model = self.flow.model
        index = torch.tensor([c.index for c in cands])
        batch = self.library.crystals.gather(index).to(torch.float32)
        mapped = [self._template_arrays(c)[2] for c in cands]
        batch = batch.replace(atomic_numbers=torch.as_tensor(np.concatenate(mapped)))
        gens = [torch.Generator().manual_seed(s.seed) for s in specs]
        base = model.draw_base(batch, gens)
        t = torch.full((batch.num_crystals,), self.start_time)
        moved = {
            k: p.interpolate(getattr(base, k), getattr(batch, k), t, batch)[0]
            for k, p in model.processes.items()
        }
        noise = torch.Generator().manual_seed(mix_seeds([s.seed for s in specs]))
        state, nfe = model.integrate(
            batch.replace(**moved), steps, sampler, noise, start_time=self.start_time
        )
        crystals = self.flow._to_crystals(state, nfe, sampler, steps)
        return [
            Crystal(c.lattice, c.frac_coords, c.atomic_numbers,
                    properties={**c.properties, "template": float(k.index)},
                    provenance=c.provenance)
            for c, k in zip(crystals, cands, strict=True)
        ]  # fmt: skip


def _model_at(path: Path) -> ModelGenerator | None:
    return ModelGenerator.load(path) if path.is_dir() else None


def _formula(cell: np.ndarray) -> str:
    from pymatgen.core import Composition, Element

    return Composition({Element.from_Z(int(z)): int((cell == z).sum()) for z in set(cell)}).formula


register_kind(KIND, TemplateGenerator.load, tasks=("csp",))
