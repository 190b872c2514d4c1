"""Elemental references for formation energies, where a hull reference holds no crystal of an
element: the CHGNet energy of the element's standard crystal structure.

The structure is ASE's experimental reference state (`ase.data.reference_states`: lattice type
and constants) where ASE can build it (fcc, bcc, hcp, diamond, simple cubic): the ground state of
most metals. Elements whose standard state ASE gives no structure for (alpha-B, alpha-Mn,
orthorhombic S and other complex or molecular ground states) get no reference, so a formation
energy that needs one stays undefined rather than resting on a made-up structure. The energies are
scored under the hull's own protocol (`reference_rows`), so they are comparable with its entries.
A reference enters formation energies only, never the hull (E_hull is unchanged by it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from autoperi_data import CrystalArrays
from pymatgen.core import Composition

from ._chgnet import RelaxSettings

BUILDABLE = ("fcc", "bcc", "hcp", "diamond", "sc")
ID_PREFIX = "ase-reference-state:"


def reference_state(symbol: str) -> tuple[str, CrystalArrays] | None:
    """(lattice type, primitive crystal) of an element's ASE reference state; None when ASE has
    no buildable structure for it."""
    from ase.build import bulk
    from ase.data import atomic_numbers, reference_states

    state = reference_states[atomic_numbers[symbol]] or {}
    kind = state.get("symmetry")
    if kind not in BUILDABLE:
        return None
    atoms = bulk(symbol)
    crystal = CrystalArrays(
        atoms.cell.array.copy(), atoms.numbers.copy(), atoms.get_scaled_positions(wrap=True)
    )
    return kind, crystal


def elements_without_reference(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """Elements of scored rows that no scored single-element row covers, sorted."""
    present, elemental = set(), set()
    for row in rows:
        if "error" in row:
            continue
        symbols = {e.symbol for e in Composition(row["formula"]).elements}
        present |= symbols
        if len(symbols) == 1:
            elemental |= symbols
    return sorted(present - elemental)


def elemental_reference_rows(
    symbols: Sequence[str], relax: RelaxSettings | None = None, n_workers: int | None = None
) -> tuple[list[dict[str, Any]], list[str]]:
    """(rows of the symbols' reference states, scored like `reference_rows` and carrying
    "element" and "structure"; the symbols without a buildable reference state)."""
    from ._hull_reference import reference_rows

    built = {s: found for s in symbols if (found := reference_state(s)) is not None}
    crystals = [crystal for _, crystal in built.values()]
    ids = [f"{ID_PREFIX}{s}" for s in built]
    rows = reference_rows(crystals, ids, relax=relax, n_workers=n_workers) if built else []
    for row, (symbol, (kind, _)) in zip(rows, built.items(), strict=True):
        row["element"], row["structure"] = symbol, f"{kind} (ASE reference state)"
    scored = [row for row in rows if "error" not in row]
    missing = sorted(set(symbols) - {row["element"] for row in scored})
    return scored, missing


def elemental_energies(document: Mapping[str, Any]) -> dict[str, float]:
    """Element symbol -> relaxed energy per atom of a hull reference's elemental references
    (empty for a file without them)."""
    rows = document.get("elemental_references", []) if isinstance(document, Mapping) else []
    return {str(r["element"]): float(r["energy_per_atom"]) for r in rows}
