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
already holds, or that uses an element outside the spec's `elements`, is redrawn (at most
`MAX_DRAWS` times; then ValueError).

A checkpoint is a template library file (`templates.npz`, as `csp/templates`) with a manifest
of kind dng/ion_exchange: `save_ion_exchange` writes one from a template checkpoint.
"""

from __future__ import annotations

import collections
import json
import math
import shutil
import warnings
from pathlib import Path

import numpy as np
from pymatgen.core import Element
from xtal import Crystal, Provenance

from autoperi_model._checkpoint import sha256_file
from autoperi_model._generator import Generator
from autoperi_model._kinds import register_kind
from autoperi_model._sampling import SampleSpec
from autoperi_model._template_generator import LIBRARY_FILE, load_library
from autoperi_model._templates import ELEMENTS, MAX_Z, TemplateLibrary

KIND = "dng/ion_exchange"
EXCHANGE_P = 0.5
MAX_DRAWS = 200
MIN_TEMPLATES = 20
MENDELEEV_SCALE = 3.0


def save_ion_exchange(templates: Path, out: Path) -> None:
    """Write an ion-exchange checkpoint at `out` from the template checkpoint `templates` (its
    library file, verified, and provenance); the ranker and any attached flows are not used."""
    _, _, manifest = load_library(templates)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(templates / LIBRARY_FILE, out / LIBRARY_FILE)
    keep = ("library_sha256", "num_templates", "data_version")
    provenance = {k: manifest[k] for k in keep if k in manifest}
    if "config" in manifest:
        provenance["data"] = manifest["config"]["data"]
    info = {"kind": KIND, "exchange_p": EXCHANGE_P, "templates": templates.name, **provenance}
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

    def __init__(self, library: TemplateLibrary, manifest: dict, checkpoint_id: str = "") -> None:
        super().__init__(checkpoint_id or "ion-exchange")
        self.library, self.manifest = library, manifest
        self.exchange_p = float(manifest.get("exchange_p", EXCHANGE_P))
        cells = [library.crystals.numbers_of(i) for i in range(len(library))]
        self.sizes = np.array([len(z) for z in cells])
        self.atom_counts = tuple(np.bincount(self.sizes).tolist())
        self.known = {reduced_key(z) for z in cells}
        self.partners = _partners(cells)

    @staticmethod
    def load(path: Path) -> IonExchangeGenerator:
        library, _, manifest = load_library(Path(path))
        checkpoint_id = sha256_file(Path(path) / "manifest.json")[:12]
        return IonExchangeGenerator(library, manifest, checkpoint_id)

    def sample(self, specs, steps=None, sampler=None, batch_size=512, noise_seed=None):
        """One crystal per spec; ValueError for a spec no draw serves (see the module notes)."""
        self.check(specs)
        if sampler not in (None, *self.samplers):
            raise ValueError(f"checkpoint {self.checkpoint_id} samples by ion_exchange only")
        return [self._sample_one(i, spec) for i, spec in enumerate(specs)]

    def _sample_one(self, i: int, spec: SampleSpec) -> Crystal:
        hi = spec.max_atoms or int(self.sizes.max())
        eligible = np.flatnonzero((self.sizes >= spec.min_atoms) & (self.sizes <= hi))
        if not len(eligible):
            raise ValueError(f"sample {i}: no template has {spec.min_atoms}-{hi} atoms")
        rng = np.random.default_rng(spec.seed)
        allowed = set(spec.elements) if spec.elements else None
        for _ in range(MAX_DRAWS):
            index = int(rng.choice(eligible))
            mapping = self._exchange(rng, self.library.crystals.numbers_of(index), allowed)
            if mapping is not None:
                return self._crystal(index, mapping)
        raise ValueError(
            f"sample {i}: no novel ion exchange found in {MAX_DRAWS} draws"
            + (" with the requested elements" if allowed else "")
        )

    def _exchange(self, rng, numbers: np.ndarray, allowed: set[int] | None) -> dict | None:
        """A template Z -> Z map exchanging at least one element, or None for a draw that is
        not novel or leaves the allowed elements."""
        elements = sorted(set(numbers.tolist()))
        chosen = rng.random(len(elements)) < self.exchange_p
        chosen[rng.integers(len(elements))] = True
        mapping = {z: z for z in elements}
        for z in np.array(elements)[chosen].tolist():
            options, weights = self.partners[z]
            free = [k for k, b in enumerate(options) if b not in mapping.values()]
            if not free:
                return None
            p = weights[free] / weights[free].sum()
            mapping[z] = int(options[free[rng.choice(len(free), p=p)]])
        new = np.array([mapping[int(z)] for z in numbers])
        if allowed is not None and not set(new.tolist()) <= allowed:
            return None
        return None if reduced_key(new) in self.known else mapping

    def _crystal(self, index: int, mapping: dict[int, int]) -> Crystal:
        lattice, numbers, frac = self.library.substituted(index, mapping)
        old = self.library.crystals.numbers_of(index)
        radius = ELEMENTS["radius"]
        scale = (np.sum(radius[numbers] ** 3) / np.sum(radius[old] ** 3)) ** (1 / 3)
        info = {"template": float(index), "nfe": 0.0}
        prov = Provenance(source="sampler:ion_exchange", generator=self.checkpoint_id)
        return Crystal(lattice * scale, frac % 1.0, numbers, properties=info, provenance=prov)


def _partners(cells: list[np.ndarray]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """For each Z: the elements in at least `MIN_TEMPLATES` library crystals that share one of
    its common oxidation states, and their weights exp(-|Mendeleev-number distance| / scale)."""
    states = _oxidation_states()
    frequency = collections.Counter(z for cell in cells for z in set(cell.tolist()))
    common = [z for z, n in frequency.items() if n >= MIN_TEMPLATES]
    mendeleev = ELEMENTS["mendeleev"]
    out = {}
    for z in range(1, MAX_Z + 1):
        options = np.array([b for b in common if b != z and states[z] & states[b]], dtype=int)
        distance = np.abs(mendeleev[options] - mendeleev[z])
        out[z] = (options, np.exp(-distance / MENDELEEV_SCALE))
    return out


register_kind(KIND, IonExchangeGenerator.load, tasks=("dng",))
