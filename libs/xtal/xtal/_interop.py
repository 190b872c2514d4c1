"""Array-level conversions to and from pymatgen `Structure` and ASE `Atoms`.

Both carry the crystal's numeric properties and id: pymatgen in `Structure.properties`
(id under "id"), ASE in `Atoms.info` (id under "id").
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass
from numbers import Real
from typing import Any

import numpy as np
from ase import Atoms
from pymatgen.core import Element, Lattice, Structure

from xtal._errors import CrystalError

OCCUPANCY_TOLERANCE = 1e-6
ID_KEY = "id"


@dataclass(frozen=True)
class CrystalFields:
    """The fields of a Crystal read from another library's object."""

    lattice: np.ndarray  # (3, 3)
    frac_coords: np.ndarray  # (n, 3)
    atomic_numbers: np.ndarray  # (n,)
    properties: dict[str, float]
    id: str


def numeric_properties(values: Mapping[str, Any]) -> dict[str, float]:
    """The entries of `values` that are real numbers (bools excluded), as floats; "id" skipped."""
    return {
        str(key): float(value)
        for key, value in values.items()
        if key != ID_KEY and isinstance(value, Real | np.number) and not isinstance(value, bool)
    }


def to_structure(
    lattice: np.ndarray, frac_coords: np.ndarray, atomic_numbers: np.ndarray, props: dict, id_: str
) -> Structure:
    """A pymatgen Structure with the same lattice rows, fractional coordinates and atom order."""
    try:
        species = [Element.from_Z(int(z)) for z in atomic_numbers]
    except ValueError as exc:
        raise CrystalError("unknown_element", str(exc)) from None
    properties: dict[str, Any] = dict(props)
    if id_:
        properties[ID_KEY] = id_
    return Structure(Lattice(lattice), species, frac_coords, properties=properties)


def from_structure(structure: Structure) -> CrystalFields:
    """Fields of an ordered Structure; CrystalError for disorder, vacancies or non-elements."""
    numbers = np.array([_site_atomic_number(index, site) for index, site in enumerate(structure)])
    properties = getattr(structure, "properties", None) or {}
    return CrystalFields(
        lattice=structure.lattice.matrix.copy(),
        frac_coords=structure.frac_coords.reshape(-1, 3).copy(),
        atomic_numbers=numbers.astype(np.int64).reshape(-1),
        properties=numeric_properties(properties),
        id=str(properties.get(ID_KEY, "")),
    )


def _site_atomic_number(index: int, site) -> int:
    items = list(site.species.items())
    total = sum(occupancy for _, occupancy in items)
    label = f"site {index} ({site.species_string})"
    if total > 1 + OCCUPANCY_TOLERANCE:
        raise CrystalError("over_occupancy", f"{label} has total occupancy {total:g} > 1")
    if len(items) != 1 or total < 1 - OCCUPANCY_TOLERANCE:
        raise CrystalError("partial_occupancy", f"{label} is disordered or partially occupied")
    specie = items[0][0]
    element = getattr(specie, "element", specie)
    if not isinstance(element, Element):
        raise CrystalError("unknown_element", f"{label}: {specie} is not a chemical element")
    return int(element.Z)


def to_atoms(
    lattice: np.ndarray, frac_coords: np.ndarray, atomic_numbers: np.ndarray, props: dict, id_: str
) -> Atoms:
    """A periodic ASE Atoms (pbc all True) with the properties (and id) in `info`."""
    atoms = Atoms(numbers=atomic_numbers, cell=lattice, scaled_positions=frac_coords, pbc=True)
    atoms.info.update(props)
    if id_:
        atoms.info[ID_KEY] = id_
    return atoms


def from_atoms(atoms: Atoms) -> CrystalFields:
    """Fields of a fully periodic Atoms; CrystalError("not_periodic") otherwise, and disorder
    recorded by ASE's CIF reader (`info["occupancy"]`) is rejected like pymatgen's."""
    if not np.all(atoms.pbc):
        raise CrystalError("not_periodic", f"the Atoms object has pbc={atoms.pbc.tolist()}")
    _check_ase_occupancy(atoms.info.get("occupancy"))
    lattice = np.array(atoms.cell.array, dtype=np.float64)
    try:
        frac = atoms.cell.scaled_positions(atoms.positions)  # (n, 3), not wrapped
    except np.linalg.LinAlgError:
        frac = np.full((len(atoms), 3), math.nan)  # singular cell: reported by validation
    return CrystalFields(
        lattice=lattice,
        frac_coords=frac,
        atomic_numbers=np.array(atoms.numbers, dtype=np.int64),
        properties=numeric_properties(atoms.info),
        id=str(atoms.info.get(ID_KEY, "")),
    )


def _check_ase_occupancy(occupancy: Mapping | None) -> None:
    for tag, species in (occupancy or {}).items():
        total = sum(species.values())
        if total > 1 + OCCUPANCY_TOLERANCE:
            raise CrystalError("over_occupancy", f"site {tag} has total occupancy {total:g} > 1")
        if len(species) != 1 or total < 1 - OCCUPANCY_TOLERANCE:
            raise CrystalError("partial_occupancy", f"site {tag} is disordered: {dict(species)}")
