"""`IonExchangeGenerator` (checkpoint kind dng/ion_exchange): the no-learning de novo baseline.

A sample is a training crystal with some of its elements exchanged for chemically similar ones,
the baseline that recent work finds hard for generative models to beat on stable new materials.
For sample i (its own numpy generator, seeded by its spec's seed): draw a template from the
library (uniformly among those whose atom count lies in the spec's range), exchange each of its
elements with probability `EXCHANGE_P` (at least one), each for an element that shares one of
its common oxidation states (pymatgen) and occurs in at least `MIN_TEMPLATES` library
crystals, drawn with probability proportional to exp(-Mendeleev-number distance /
`MENDELEEV_SCALE`); the exchanged elements stay distinct.
The lattice is scaled isotropically by the cube root of the ratio of summed atomic volumes
(atomic radii cubed), fractional coordinates kept. A draw whose reduced composition the library
already holds is redrawn (at most `MAX_DRAWS` times; then ValueError).

Conditions: templates are restricted to those with the spec's atom count and, when asked
(`conditions["space_group_number"]`), the requested space group (the library stores each pool
crystal standardised with its spglib group, and ion exchange keeps the fractional coordinates;
a sample is still checked with spglib at `SYMPREC` and redrawn if the exchange and rescaling
moved it to another group, which happens for ~1 % of templates), and to templates whose
elements can all map into `elements` (kept, or exchanged for a partner inside the set; elements
outside it must be exchanged) with a host for every required element; required elements the
template has are never exchanged. In a draw, each required element missing
from the kept ones is placed on a random exchanged element that has it as a partner, the other
exchanged elements draw partners as above, within `elements`. A request no template can serve
is refused by `check` with a ValueError naming the condition that left none.

A manifest's "substitution" options (`_substitution.SubstitutionOptions`) replace the partner
weights, add a charge-balance check to a draw and change the volumes that scale the lattice:
the learned substitution generator; without them, the baseline above.

A checkpoint is a template library file (`templates.npz`, as `csp/templates`) with a manifest
of kind dng/ion_exchange: `save_ion_exchange` writes one from a template checkpoint.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import math
import shutil
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from pymatgen.core import Element
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer
from xtal import Crystal, Provenance

from autoperi_model._checkpoint import sha256_file
from autoperi_model._generator import Generator
from autoperi_model._kinds import register_kind
from autoperi_model._sampling import SampleSpec
from autoperi_model._substitution import (
    SubstitutionOptions,
    charge_balanced,
    element_volumes,
    learned_weights,
)
from autoperi_model._template_generator import LIBRARY_FILE, SPACE_GROUP, load_library
from autoperi_model._templates import ELEMENTS, MAX_Z, TemplateLibrary

KIND = "dng/ion_exchange"
EXCHANGE_P = 0.5
MAX_DRAWS = 200
MIN_TEMPLATES = 20
MENDELEEV_SCALE = 3.0
SYMPREC = 0.1  # spglib tolerance of a space-group request, Angstrom
CACHED_REQUESTS = 256  # eligible-template sets kept (the cache is cleared when full)


def save_ion_exchange(
    templates: Path, out: Path, options: SubstitutionOptions | None = None
) -> None:
    """Write an ion-exchange checkpoint at `out` from the template checkpoint `templates` (its
    library file, verified, and provenance); the ranker and any attached flows are not used.
    `options` switch on the learned priors (`_substitution`; default: the baseline)."""
    _, _, manifest = load_library(templates)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(templates / LIBRARY_FILE, out / LIBRARY_FILE)
    keep = ("library_sha256", "num_templates", "data_version")
    provenance = {k: manifest[k] for k in keep if k in manifest}
    if "config" in manifest:
        provenance["data"] = manifest["config"]["data"]
    learned = (options or SubstitutionOptions()).as_manifest()
    info = {"kind": KIND, "exchange_p": EXCHANGE_P, **learned}
    info |= {"templates": templates.name, **provenance}
    (out / "manifest.json").write_text(json.dumps(info, indent=2) + "\n")


def reduced_key(numbers: np.ndarray) -> tuple[tuple[int, int], ...]:
    """The reduced composition of a cell: sorted (Z, count / gcd of counts)."""
    counts = collections.Counter(np.asarray(numbers).tolist())
    gcd = math.gcd(*counts.values())
    return tuple(sorted((int(z), c // gcd) for z, c in counts.items()))


def _oxidation_states() -> list[frozenset[int]]:
    """Common oxidation states by Z (0: unused); elements with none get {0}."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        states = [frozenset()] + [
            frozenset(Element.from_Z(z).common_oxidation_states) or frozenset({0})
            for z in range(1, MAX_Z + 1)
        ]
    return states


class IonExchangeGenerator(Generator):
    """De novo crystals by ion exchange on a template library (see the module notes)."""

    kind = KIND
    tasks = frozenset({"dng"})
    samplers = ("ion_exchange",)
    default_sampler, default_steps = "ion_exchange", 1
    max_z = MAX_Z
    conditions = (SPACE_GROUP,)

    def __init__(self, library: TemplateLibrary, manifest: dict, checkpoint_id: str = "") -> None:
        super().__init__(checkpoint_id or "ion-exchange")
        self.library, self.manifest = library, manifest
        self.exchange_p = float(manifest.get("exchange_p", EXCHANGE_P))
        self.options = SubstitutionOptions.of(manifest)
        cells = [library.crystals.numbers_of(i) for i in range(len(library))]
        self.sizes = np.array([len(z) for z in cells])
        self.atom_counts = tuple(np.bincount(self.sizes).tolist())
        self.known = {reduced_key(z) for z in cells}
        learned = library.substitution if self.options.learned_partners else None
        self.partners = _partners(cells, learned)
        self.volumes = ELEMENTS["radius"] ** 3
        if self.options.learned_volumes:
            cell_volumes = torch.linalg.det(library.crystals.lattice).abs().numpy()
            self.volumes = element_volumes(cells, cell_volumes)
        self.element_sets = [frozenset(z.tolist()) for z in cells]
        self._eligible: dict[_Request, np.ndarray] = {}

    @staticmethod
    def load(path: Path) -> IonExchangeGenerator:
        library, _, manifest = load_library(Path(path))
        checkpoint_id = sha256_file(Path(path) / "manifest.json")[:12]
        return IonExchangeGenerator(library, manifest, checkpoint_id)

    def check(self, specs: Sequence[SampleSpec]) -> None:
        """The base checks, then ValueError naming why no template can serve a spec (see
        `eligible`)."""
        super().check(specs)
        for i, spec in enumerate(specs):
            try:
                self.eligible(_Request.of(spec, int(self.sizes.max())))
            except ValueError as exc:
                raise ValueError(f"sample {i}: {exc}") from None

    def sample(self, specs, steps=None, sampler=None, batch_size=512, noise_seed=None):
        """One crystal per spec; ValueError for a spec no draw serves (see the module notes)."""
        self.check(specs)
        if sampler not in (None, *self.samplers):
            raise ValueError(f"checkpoint {self.checkpoint_id} samples by ion_exchange only")
        return [self._sample_one(i, spec) for i, spec in enumerate(specs)]

    def eligible(self, req: _Request) -> np.ndarray:
        """The library indices a request may draw: atom count in range, the requested space
        group, and elements that can be exchanged into the allowed set with every required
        element placed (a necessary test; a draw that still fails is redrawn). ValueError
        naming the first of these that leaves no template."""
        if req not in self._eligible:
            if len(self._eligible) >= CACHED_REQUESTS:
                self._eligible.clear()
            self._eligible[req] = self._filter(req)
        return self._eligible[req]

    def _filter(self, req: _Request) -> np.ndarray:
        index = np.flatnonzero((self.sizes >= req.lo) & (self.sizes <= req.hi))
        if not len(index):
            raise ValueError(f"no template has {req.lo}-{req.hi} atoms")
        if req.group:
            index = index[self.library.crystals.space_group[index].numpy() == req.group]
            if not len(index):
                raise ValueError(
                    f"no template with {req.lo}-{req.hi} atoms is in space group {req.group}"
                )
        fits = {e: self._fits(e, req) for e in {self.element_sets[i] for i in index}}
        index = index[[fits[self.element_sets[i]] for i in index]]
        if not len(index):
            raise ValueError(
                f"no template {req.describe()} can be ion-exchanged into {req.wants()}"
            )
        return index

    def _fits(self, elements: frozenset[int], req: _Request) -> bool:
        """Whether one element of a template can be exchanged within the allowed set, each can
        map into it (kept or exchanged) and each required element has a host."""
        if len(elements) < len(req.required):
            return False
        if req.allowed is not None and len(elements) > len(req.allowed):
            return False
        targets = {z: set(self._targets(z, req.allowed)) for z in elements}
        if not any(targets.values()):  # nothing to exchange
            return False
        options = {z: targets[z] | _kept(z, req.allowed) for z in elements}
        if not all(options.values()):
            return False
        return all(any(r in o for o in options.values()) for r in req.required)

    def _targets(self, z: int, allowed: frozenset[int] | None) -> list[int]:
        """The exchange partners of z within `allowed` (None: any)."""
        return [b for b in self.partners[z][0].tolist() if allowed is None or b in allowed]

    def _sample_one(self, i: int, spec: SampleSpec) -> Crystal:
        req = _Request.of(spec, int(self.sizes.max()))
        eligible = self.eligible(req)
        rng = np.random.default_rng(spec.seed)
        for _ in range(MAX_DRAWS):
            index = int(rng.choice(eligible))
            mapping = self._exchange(rng, self.library.crystals.numbers_of(index), req)
            if mapping is None:
                continue
            crystal = self._crystal(index, mapping)
            if not req.group or spglib_group(crystal) == req.group:
                return crystal
        raise ValueError(
            f"sample {i}: no novel ion exchange into {req.wants()} found in {MAX_DRAWS} draws"
        )

    def _exchange(self, rng, numbers: np.ndarray, req: _Request) -> dict | None:
        """A template Z -> Z map exchanging at least one element, within the allowed elements
        and holding every required one, or None for a draw that fails (then redrawn)."""
        elements = sorted(set(numbers.tolist()))
        swap = self._swapped(rng, elements, req)
        mapping = {z: z for z in elements if z not in swap}
        if not self._place_required(rng, swap, mapping, req):
            return None
        for z in swap:
            if z not in mapping and not self._draw_partner(rng, z, mapping, req.allowed):
                return None
        key = reduced_key(np.array([mapping[int(z)] for z in numbers]))
        if key in self.known:
            return None
        return None if self.options.charge_balanced and not charge_balanced(key) else mapping

    def _swapped(self, rng, elements: list[int], req: _Request) -> list[int]:
        """The template elements to exchange: those outside the allowed set, and each other one
        with probability `exchange_p` except the required ones (kept where the template has
        them), at least one."""
        forced = np.array([req.allowed is not None and z not in req.allowed for z in elements])
        free = np.array([z not in req.required for z in elements])
        chosen = (rng.random(len(elements)) < self.exchange_p) & free
        if not (chosen | forced).any():
            pick = np.flatnonzero(free) if free.any() else np.arange(len(elements))
            chosen[rng.choice(pick)] = True
        return [z for z, c in zip(elements, chosen | forced, strict=True) if c]

    def _place_required(self, rng, swap: list[int], mapping: dict, req: _Request) -> bool:
        """Exchange a random host among `swap` into each required element not yet held
        (in `mapping`, in place); False when one has no host."""
        for r in rng.permutation(sorted(req.required - set(mapping.values()))).tolist():
            hosts = [z for z in swap if z not in mapping and r in self.partners[z][0]]
            if not hosts:
                return False
            mapping[hosts[rng.integers(len(hosts))]] = r
        return True

    def _draw_partner(self, rng, z: int, mapping: dict, allowed: frozenset | None) -> bool:
        """Map z (in `mapping`, in place) to a partner drawn by weight among those allowed and
        not yet used; False when there is none."""
        options, weights = self.partners[z]
        used = set(mapping.values())
        free = [k for k, b in enumerate(options.tolist()) if b not in used]
        free = [k for k in free if allowed is None or int(options[k]) in allowed]
        if not free:
            return False
        p = weights[free] / weights[free].sum()
        mapping[z] = int(options[free[rng.choice(len(free), p=p)]])
        return True

    def _crystal(self, index: int, mapping: dict[int, int]) -> Crystal:
        lattice, numbers, frac = self.library.substituted(index, mapping)
        old = self.library.crystals.numbers_of(index)
        scale = (np.sum(self.volumes[numbers]) / np.sum(self.volumes[old])) ** (1 / 3)
        info = {"template": float(index), "nfe": 0.0}
        prov = Provenance(source="sampler:ion_exchange", generator=self.checkpoint_id)
        return Crystal(lattice * scale, frac % 1.0, numbers, properties=info, provenance=prov)


@dataclasses.dataclass(frozen=True)
class _Request:
    """What a de novo spec asks of the library: atom range, allowed elements (None: any),
    required elements and space group (0: any)."""

    lo: int
    hi: int
    allowed: frozenset[int] | None
    required: frozenset[int]
    group: int

    @staticmethod
    def of(spec: SampleSpec, largest: int) -> _Request:
        allowed = frozenset(spec.elements) if spec.elements else None
        group = int(spec.conditions.get(SPACE_GROUP, 0))
        lo, hi = max(spec.min_atoms, 1), spec.max_atoms or largest
        return _Request(lo, hi, allowed, frozenset(spec.required_elements), group)

    def describe(self) -> str:
        group = f" in space group {self.group}" if self.group else ""
        return f"with {self.lo}-{self.hi} atoms{group}"

    def wants(self) -> str:
        def symbols(zs):
            return "-".join(Element.from_Z(z).symbol for z in sorted(zs))

        parts = [f"elements {symbols(self.allowed)}"] if self.allowed is not None else []
        parts += [f"required elements {symbols(self.required)}"] if self.required else []
        return " with ".join(parts) or "a novel composition"


def spglib_group(crystal: Crystal) -> int:
    """The space group number spglib finds at `SYMPREC` (0 when it fails on the cell)."""
    try:
        return SpacegroupAnalyzer(crystal.to_pymatgen(), symprec=SYMPREC).get_space_group_number()
    except Exception:  # spglib fails on degenerate cells: no group
        return 0


def _kept(z: int, allowed: frozenset[int] | None) -> set[int]:
    """{z} when a template element may stay itself (it is allowed), else empty."""
    return {z} if allowed is None or z in allowed else set()


def _partners(
    cells: list[np.ndarray], substitution: np.ndarray | None = None
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """For each Z: the elements in at least `MIN_TEMPLATES` library crystals that share one of
    its common oxidation states, and their weights exp(-|Mendeleev-number distance| / scale),
    or with a learned `substitution` score matrix, `learned_weights`."""
    states = _oxidation_states()
    frequency = collections.Counter(z for cell in cells for z in set(cell.tolist()))
    common = [z for z, n in frequency.items() if n >= MIN_TEMPLATES]
    mendeleev = ELEMENTS["mendeleev"]
    out = {}
    for z in range(1, MAX_Z + 1):
        options = np.array([b for b in common if b != z and states[z] & states[b]], dtype=int)
        if substitution is not None:
            out[z] = (options, learned_weights(options, z, substitution))
            continue
        distance = np.abs(mendeleev[options] - mendeleev[z])
        out[z] = (options, np.exp(-distance / MENDELEEV_SCALE))
    return out


register_kind(KIND, IonExchangeGenerator.load, tasks=("dng",))
