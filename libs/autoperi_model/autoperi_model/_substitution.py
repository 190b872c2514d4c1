"""What the learned substitution generator learns from its library (docs/SCIENCE.md 4.8).

Three priors replace the ion-exchange baseline's hand-set rules, each switched on by the
checkpoint's manifest (`SubstitutionOptions`):
- partners: an exchange z -> b is weighted by exp(PMI(z, b)), the library's learned
  substitution score (how often the two occupy the same Wyckoff sites of one prototype), instead
  of exp(-Mendeleev distance / scale); the partner set (common oxidation state) is unchanged;
- charge balance: a draw whose composition SMACT finds no charge-neutral, electronegativity-
  ordered assignment for (its current ICSD 2024 oxidation states; alloys pass) is redrawn;
- volumes: per-element atomic volumes fitted to the library's cells by non-negative least
  squares scale the lattice, instead of summed cubes of atomic radii.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import asdict, dataclass

import numpy as np
from pymatgen.core import Composition, Element
from scipy.optimize import nnls

from autoperi_model._templates import ELEMENTS, MAX_Z


@dataclass(frozen=True)
class SubstitutionOptions:
    """Which learned priors a `dng/ion_exchange` checkpoint uses (all off: the baseline)."""

    learned_partners: bool = False
    charge_balanced: bool = False
    learned_volumes: bool = False

    @staticmethod
    def of(manifest: dict) -> SubstitutionOptions:
        """The options a manifest names under "substitution" (absent: the baseline's)."""
        given = manifest.get("substitution", {})
        unknown = set(given) - set(asdict(SubstitutionOptions()))
        if unknown:
            raise ValueError(f"unknown substitution options {sorted(unknown)}")
        return SubstitutionOptions(**{k: bool(v) for k, v in given.items()})

    def as_manifest(self) -> dict:
        return {"substitution": asdict(self)} if any(asdict(self).values()) else {}


def learned_weights(options: np.ndarray, z: int, substitution: np.ndarray) -> np.ndarray:
    """(len(options),) weights exp(PMI(z, b)) of exchanging z for each option b."""
    return np.exp(substitution[z, options] - substitution[z, options].max(initial=0.0))


def element_volumes(cells: list[np.ndarray], volumes: np.ndarray) -> np.ndarray:
    """(MAX_Z + 1,) atomic volumes v >= 0 minimising sum_i (V_i - sum_a v_{z_a})^2 / V_i^2 over
    the library cells (atomic numbers, cell volumes (C,)); an element no cell holds gets its
    atomic radius cubed times the median ratio of fitted volume to radius cubed."""
    counts = np.zeros((len(cells), MAX_Z + 1))
    for i, z in enumerate(cells):
        np.add.at(counts[i], z, 1.0)
    seen = np.flatnonzero(counts.sum(0) > 0)
    fitted, _ = nnls(counts[:, seen] / volumes[:, None], np.ones(len(cells)))
    radius_volume = ELEMENTS["radius"] ** 3
    packing = np.median(fitted[fitted > 0] / radius_volume[seen][fitted > 0])
    out = radius_volume * packing
    out[seen] = np.where(fitted > 0, fitted, out[seen])
    return out


@functools.lru_cache(maxsize=100_000)
def charge_balanced(reduced: tuple[tuple[int, int], ...]) -> bool:
    """Whether SMACT finds a reduced composition, sorted (Z, count) pairs as
    `_ion_exchange.reduced_key` gives them, charge-balanced."""
    from smact.screening import smact_validity

    composition = Composition({Element.from_Z(z): count for z, count in reduced})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bool(smact_validity(composition))
