"""Energy above the hull and formation energy against a configured reference (optional).

The reference is a JSON file (gzipped when named `.gz`) of scored crystals, e.g. what `autoperi
score FILES --json OUT` writes, or a hull reference (`autoperi data hull`, relaxed energies):
{"results": [{"formula", "energy_per_atom", ...}]} (rows with an "error" are skipped).
Its energies must come from the same potential and protocol (single point or relaxed) as the
crystals scored against it. The hull itself is autoperi_eval's `Hull` (pymatgen PhaseDiagram per
chemical system, synthetic terminals where the reference lacks an element): E_hull is unset where
the reference does not span the crystal's composition. The formation energy is measured against
each element's lowest elemental entry, else the file's `elemental_references` (the element's
standard crystal under the same protocol), and is unset where an element has neither.
"""

import math
import threading
from pathlib import Path

import numpy as np
from autoperi_eval import Hull, elemental_energies, read_json_document
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
            elemental = elemental_energies(data)
        except (OSError, EOFError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path} is not a hull reference file: {exc}") from None
        if not pairs:
            raise ValueError(f"{path} holds no scored crystals")
        self.hull = Hull([c for c, _ in pairs], np.array([e for _, e in pairs]), elemental)
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
        formation = self.hull.formation_energy(composition, energy_per_atom)
        return _finite(e_hull), _finite(formation)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
