"""Energy above the convex hull of a reference set, with pymatgen's PhaseDiagram (SCIENCE 5.5).

The reference is the training + validation data of the dataset, scored by CHGNet exactly as the
samples are (single point for the single-point hull, the same bounded relaxation for the relaxed
hull). One PhaseDiagram is built per chemical system, from the reference entries whose elements are
a subset of it, and cached in memory.

Missing elemental phases: a PhaseDiagram needs one entry per element. Where the reference has no
phase of a pure element (Perov-5 has none at all), a synthetic terminal entry is added whose energy
is 1,000 eV/atom above every reference entry of that chemical system, so it never lies on a hull
facet that reference compounds can form. If the hull under a sample's composition still needs a
synthetic terminal, the composition lies outside what the reference spans and E_hull is undefined
(NaN, reported as such), rather than measured against an invented elemental energy.

Formation energy per atom: the energy less each element's reference energy per atom, weighted by
its atomic fraction. An element's reference is its lowest single-element reference entry, else an
elemental reference given apart from the hull (`elemental`: e.g. the element's standard crystal
scored under the same protocol, `_elemental`); NaN where an element has neither. Elemental
references given apart never enter a PhaseDiagram, so they do not change E_hull.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np
from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
from pymatgen.core import Composition

SYNTHETIC_OFFSET = 1000.0  # eV/atom above the highest reference entry of the chemical system
SYNTHETIC_NAME = "synthetic-terminal"


def chemsys(composition: Composition) -> frozenset[str]:
    """The set of element symbols of a composition."""
    return frozenset(el.symbol for el in composition.elements)


def relevant_entries(
    reference: Sequence[Composition], targets: Sequence[Composition], max_elements: int = 10
) -> list[int]:
    """Indices of reference entries whose elements are a subset of some target's elements."""
    by_system: dict[frozenset[str], list[int]] = {}
    for i, comp in enumerate(reference):
        by_system.setdefault(chemsys(comp), []).append(i)
    wanted: set[int] = set()
    for system in {chemsys(t) for t in targets if len(t.elements) <= max_elements}:
        elements = sorted(system)
        for size in range(1, len(elements) + 1):
            for subset in itertools.combinations(elements, size):
                wanted.update(by_system.get(frozenset(subset), ()))
    return sorted(wanted)


class Hull:
    """E_hull of compositions against reference (composition, energy per atom) entries.

    Entries with a non-finite energy are ignored. E_hull may be negative (a sample below the
    reference hull); NaN where the reference does not span the composition.
    """

    def __init__(
        self,
        compositions: Sequence[Composition],
        energies: np.ndarray,
        elemental: Mapping[str, float] | None = None,
    ) -> None:
        self._systems: dict[frozenset[str], list[PDEntry]] = {}
        self._elemental = dict(elemental or {})
        for comp, energy in zip(compositions, energies, strict=True):
            if np.isfinite(energy):
                entry = PDEntry(comp, float(energy) * comp.num_atoms)
                self._systems.setdefault(chemsys(comp), []).append(entry)
        self._diagrams: dict[frozenset[str], PhaseDiagram | None] = {}

    def _entries(self, system: frozenset[str]) -> list[PDEntry]:
        elements = sorted(system)
        out: list[PDEntry] = []
        for size in range(1, len(elements) + 1):
            for subset in itertools.combinations(elements, size):
                out.extend(self._systems.get(frozenset(subset), ()))
        return out

    def diagram(self, system: frozenset[str]) -> PhaseDiagram | None:
        """PhaseDiagram of a chemical system (None when the reference has no entry in it)."""
        if system not in self._diagrams:
            entries = self._entries(system)
            if not entries:
                self._diagrams[system] = None
                return None
            top = max(e.energy_per_atom for e in entries)
            present = {e.composition.elements[0].symbol for e in entries if e.is_element}
            for symbol in sorted(system - present):
                energy = top + SYNTHETIC_OFFSET
                entries.append(PDEntry(Composition(symbol), energy, name=SYNTHETIC_NAME))
            self._diagrams[system] = PhaseDiagram(entries)
        return self._diagrams[system]

    def e_above_hull(self, composition: Composition, energy_per_atom: float) -> float:
        """Energy above the hull (eV/atom) of a phase with this composition and energy."""
        if not np.isfinite(energy_per_atom) or composition.num_atoms == 0:
            return float("nan")
        diagram = self.diagram(chemsys(composition))
        if diagram is None:
            return float("nan")
        entry = PDEntry(composition, float(energy_per_atom) * composition.num_atoms)
        try:
            decomp, e_hull = diagram.get_decomp_and_e_above_hull(entry, allow_negative=True)
        except (ValueError, KeyError):
            return float("nan")
        if any(e.name == SYNTHETIC_NAME for e in decomp):
            return float("nan")
        return float(e_hull)

    def element_reference(self, symbol: str) -> float:
        """Reference energy per atom of an element: its lowest single-element entry, else the
        given elemental reference, else NaN."""
        entries = self._systems.get(frozenset({symbol}), ())
        if entries:
            return min(e.energy_per_atom for e in entries)
        return float(self._elemental.get(symbol, float("nan")))

    def formation_energy(self, composition: Composition, energy_per_atom: float) -> float:
        """Formation energy per atom (eV/atom) against the element references; NaN where an
        element has none."""
        if not np.isfinite(energy_per_atom) or composition.num_atoms == 0:
            return float("nan")
        fractions = composition.fractional_composition
        refs = sum(fractions[el] * self.element_reference(el.symbol) for el in fractions)
        return float(energy_per_atom - refs)
