"""Energy above the hull and formation energy against a configured reference (optional).

The reference is a JSON file (gzipped when named `.gz`) of scored crystals, e.g. what `autoperi
score FILES --json OUT` writes, or a hull reference (`autoperi data hull`, relaxed energies):
{"results": [{"formula", "energy_per_atom", ...}]} (rows with an "error" are skipped).
Its energies must come from the same potential and protocol (single point or relaxed) as the
crystals scored against it. The hull itself is autoperi_eval's `Hull` (pymatgen PhaseDiagram per
chemical system, synthetic terminals where the reference lacks an element): both values are
unset where the reference does not span the crystal's composition, and the formation energy also
where an element has no real elemental reference.
"""

import math
import threading
from pathlib import Path

import numpy as np
from autoperi_eval import SYNTHETIC_NAME, Hull, chemsys, read_json_document
from pymatgen.analysis.phase_diagram import PDEntry
from pymatgen.core import Composition, Element


class HullReference:
    """E_hull and formation energy per atom of (composition, energy per atom) pairs."""

    def __init__(self, path: str | Path, source: str = "") -> None:
        path = Path(path)
        try:
            data = read_json_document(path)
            rows = data["results"] if isinstance(data, dict) else data
            pairs = [
                (Composition(r["formula"]), float(r["energy_per_atom"]))
                for r in rows
                if not r.get("error") and r.get("energy_per_atom") is not None
            ]
        except (OSError, EOFError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path} is not a hull reference file: {exc}") from None
        if not pairs:
            raise ValueError(f"{path} holds no scored crystals")
        self.hull = Hull([c for c, _ in pairs], np.array([e for _, e in pairs]))
        self.source = source or path.name
        self.size = len(pairs)
        self._lock = threading.Lock()  # the Hull caches one PhaseDiagram per chemical system

    def evaluate(
        self, atomic_numbers: np.ndarray, energy_per_atom: float
    ) -> tuple[float | None, float | None]:
        """(energy above the hull, formation energy per atom) in eV/atom, None where undefined."""
        values, counts = np.unique(np.asarray(atomic_numbers), return_counts=True)
        composition = Composition(
            {Element.from_Z(int(z)): int(n) for z, n in zip(values, counts, strict=True)}
        )
        with self._lock:
            e_hull = self.hull.e_above_hull(composition, energy_per_atom)
            diagram = self.hull.diagram(chemsys(composition))
        if not math.isfinite(e_hull) or diagram is None:
            return None, None
        refs = [diagram.el_refs[el] for el in composition.elements]
        if any(ref.name == SYNTHETIC_NAME for ref in refs):
            return e_hull, None
        entry = PDEntry(composition, energy_per_atom * composition.num_atoms)
        return e_hull, float(diagram.get_form_energy_per_atom(entry))
