"""The data of an explorer page: one table row per crystal, the element colours of the legend,
and the chemiscope dataset (structures, properties, map and viewer settings).

Pure functions of the entries (`_explore_load.Entry`); the page (`_explore_page`) only embeds what
`page_data` returns. Space groups come from spglib through pymatgen's SpacegroupAnalyzer at
symprec 0.1 (the project's convention for generated crystals).
"""

from __future__ import annotations

import functools
import importlib.resources
import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import yaml

from autoperi_app._explore_load import Entry

SYMPREC = 0.1
_MAX_FRACTION_ELEMENTS = 12
_GREY = "#808080"


def page_data(entries: Sequence[Entry], title: str) -> dict[str, Any]:
    """Everything the page shows: {"title", "rows", "legend", "has_energy", "dataset"}.

    rows[i] describes entries[i] (key, formula, elements, natoms, spacegroup, sg_number,
    energy, e_hull, round; None where unknown); legend maps every element present to its Jmol
    colour (the colours chemiscope's viewer draws); dataset is chemiscope's input, structure i
    being entries[i].
    """
    rows = [table_row(e) for e in entries]
    elements = sorted({el for r in rows for el in r["elements"]})
    has_energy = any(r["energy"] is not None or r["e_hull"] is not None for r in rows)
    return {
        "title": title,
        "rows": rows,
        "legend": {el: element_colour(el) for el in elements},
        "has_energy": has_energy,
        "dataset": chemiscope_dataset(entries, rows),
    }


def table_row(entry: Entry) -> dict[str, Any]:
    """The table's cells for one crystal (space group at SYMPREC; None where unknown)."""
    crystal = entry.crystal
    symbol, number = space_group(entry)
    return {
        "key": entry.key,
        "formula": crystal.formula,
        "elements": sorted(set(crystal.symbols)),
        "natoms": int(crystal.num_atoms),
        "spacegroup": symbol,
        "sg_number": number,
        "energy": _finite(entry.energy_per_atom),
        "e_hull": _finite(entry.e_above_hull),
        "round": entry.round,
    }


def space_group(entry: Entry) -> tuple[str | None, int | None]:
    """(international symbol, number) by spglib at SYMPREC; (None, None) when spglib fails."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    try:
        analyzer = SpacegroupAnalyzer(entry.crystal.to_pymatgen(), symprec=SYMPREC)
        return analyzer.get_space_group_symbol(), int(analyzer.get_space_group_number())
    except Exception:  # spglib refuses some degenerate cells; the table shows "?"
        return None, None


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


@functools.cache
def _jmol_colours() -> dict[str, list[int]]:
    path = importlib.resources.files("pymatgen.vis") / "ElementColorSchemes.yaml"
    return yaml.safe_load(path.read_text())["Jmol"]


def element_colour(symbol: str) -> str:
    """The Jmol colour of an element as #rrggbb (grey for an element the scheme lacks)."""
    rgb = _jmol_colours().get(symbol)
    return _GREY if rgb is None else "#{:02x}{:02x}{:02x}".format(*rgb)


def chemiscope_dataset(entries: Sequence[Entry], rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """chemiscope's input: meta, structures (Cartesian positions, cell rows a, b, c), per-structure
    properties (missing values as None, read as NaN by the page) and settings (unit cell shown,
    no bonds: chemiscope guesses them without periodic images;
    map: energy (or E_hull) against the atomic fraction of the most common element). Only text
    made here goes in (chemiscope may show it as HTML): no name or formula from the source."""
    properties = _properties(entries, rows)
    return {
        "meta": {"name": "AutoPeri explorer"},
        "structures": [_structure(e) for e in entries],
        "properties": properties,
        "settings": {
            "map": _map_axes(properties),
            "structure": [{"unitCell": True, "bonds": False}],
        },
    }


def _structure(entry: Entry) -> dict[str, Any]:
    crystal = entry.crystal
    cart = np.asarray(crystal.cart_coords, dtype=float)  # (n_atoms, 3) Angstrom
    return {
        "size": int(crystal.num_atoms),
        "names": list(crystal.symbols),
        "x": cart[:, 0].round(5).tolist(),
        "y": cart[:, 1].round(5).tolist(),
        "z": cart[:, 2].round(5).tolist(),
        "cell": np.asarray(crystal.lattice, dtype=float).reshape(9).round(5).tolist(),
    }


def _properties(entries: Sequence[Entry], rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    columns = {
        "energy per atom": ("energy", "eV/atom"),
        "E_hull": ("e_hull", "eV/atom"),
        "number of atoms": ("natoms", ""),
        "space group number": ("sg_number", ""),
        "round": ("round", ""),
    }
    props = {}
    for name, (key, units) in columns.items():
        values = [r[key] for r in rows]
        if any(v is not None for v in values):
            props[name] = {"target": "structure", "values": values, "units": units}
    for element in _common_elements(rows):
        values = [_fraction(e, element) for e in entries]
        props[f"x({element})"] = {"target": "structure", "values": values,
                                  "description": f"atomic fraction of {element}"}  # fmt: skip
    return props


def _common_elements(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Elements by the number of crystals holding them, most common first (at most 12)."""
    counts = Counter(el for r in rows for el in r["elements"])
    return [el for el, _ in counts.most_common(_MAX_FRACTION_ELEMENTS)]


def _fraction(entry: Entry, element: str) -> float:
    symbols = entry.crystal.symbols
    return round(symbols.count(element) / len(symbols), 6)


def _map_axes(properties: dict[str, Any]) -> dict[str, Any]:
    """x: the most common element's fraction; y: energy, else E_hull, else the atom count."""
    fractions = [name for name in properties if name.startswith("x(")]
    y = next((n for n in ("energy per atom", "E_hull") if n in properties), "number of atoms")
    x = fractions[0] if fractions else "number of atoms"
    color = "E_hull" if "E_hull" in properties and y != "E_hull" else y
    return {"x": {"property": x}, "y": {"property": y}, "color": {"property": color}}
