"""Per-crystal basics: building, validity, density, number of elements (SCIENCE 5.1, 5.3)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from pymatgen.core import Composition, Element

from ._properties import density, n_elements
from ._structs import SampleRecord
from ._validity import composition_valid, structural_check


def formula_of(numbers: np.ndarray) -> str:
    """Reduced formula of a list of atomic numbers ('' when empty or unknown elements)."""
    if len(numbers) == 0 or not all(1 <= int(z) <= 118 for z in numbers):
        return ""
    values, counts = np.unique(numbers, return_counts=True)
    amounts = {Element.from_Z(int(z)): int(c) for z, c in zip(values, counts, strict=True)}
    return Composition(amounts).reduced_formula


def basic_table(records: Sequence[SampleRecord]) -> dict[str, np.ndarray]:
    """Columns (n,) per record: constructed, struct_valid, struct_valid_cdvae, comp_valid,
    valid (struct and comp; fingerprint failures are folded in later), min_dist (A), volume (A^3),
    density (g/cm^3), n_elem, n_atoms, formula.

    Structural validity needs a constructed crystal (CDVAE); compositional validity only needs
    the atom types, so it is judged for every record.
    """
    n = len(records)
    cols: dict[str, np.ndarray] = {
        "constructed": np.zeros(n, bool),
        "struct_valid": np.zeros(n, bool),
        "struct_valid_cdvae": np.zeros(n, bool),
        "comp_valid": np.zeros(n, bool),
        "min_dist": np.full(n, np.nan),
        "volume": np.full(n, np.nan),
        "density": np.full(n, np.nan),
        "n_elem": np.zeros(n, np.int64),
        "n_atoms": np.array([len(r.numbers) for r in records], dtype=np.int64),
        "formula": np.array([formula_of(r.numbers) for r in records], dtype=object),
    }
    for i, record in enumerate(records):
        cols["comp_valid"][i] = composition_valid(record.numbers)
        if record.structure is not None:
            cols["volume"][i] = record.structure.volume
            cols["n_elem"][i] = n_elements(record.structure)
        if not record.constructed:
            continue
        structure = record.structure
        check = structural_check(structure)
        cols["constructed"][i] = True
        cols["struct_valid"][i] = check.valid
        cols["struct_valid_cdvae"][i] = check.valid_cdvae
        cols["min_dist"][i] = check.min_distance
        cols["density"][i] = density(structure)
    cols["valid"] = cols["struct_valid"] & cols["comp_valid"]
    return cols


@dataclass
class Outcome:
    """Metrics (nested dict), per-sample columns (n,), reference columns for plots, counts."""

    metrics: dict = field(default_factory=dict)
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    reference: dict[str, np.ndarray] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)


def validity_metrics(cols: dict[str, np.ndarray]) -> dict[str, float]:
    """Shares over ALL records (CDVAE): constructed, struct_valid(_cdvae), comp_valid, valid."""
    n = len(cols["valid"])
    return {
        "constructed": float(cols["constructed"].mean()) if n else float("nan"),
        "struct_valid": float(cols["struct_valid"].mean()) if n else float("nan"),
        "struct_valid_cdvae": float(cols["struct_valid_cdvae"].mean()) if n else float("nan"),
        "comp_valid": float(cols["comp_valid"].mean()) if n else float("nan"),
        "valid": float(cols["valid"].mean()) if n else float("nan"),
    }
