"""`Crystal`, the immutable domain type every AutoPeri component speaks, and its `Provenance`."""

import dataclasses
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any, Self

import numpy as np
from ase import Atoms
from pymatgen.core import Composition, Lattice, Structure

from xtal import _canonical, _cif, _interop
from xtal._elements import element_symbol
from xtal._errors import CrystalError
from xtal._validate import ValidationLimits, check_crystal_arrays


@dataclass(frozen=True)
class Provenance:
    """Where a crystal came from (mirrors autoperi.crystal.v1.Provenance, without `created`)."""

    source: str = ""  # e.g. "perov_5:test", "upload:foo.cif", "sampler"
    record: str = ""  # record key inside the source (row index, material id, CIF block)
    dataset: str = ""  # dataset name once ingested
    dataset_commit: str = ""  # dataset version the crystal was read from
    generator: str = ""  # checkpoint id for generated crystals


@dataclass(frozen=True, eq=False)
class Crystal:
    """A periodic crystal (L, X, A) with properties, identity and provenance. Immutable.

    Arrays are copied on construction and read-only:
      lattice         (3, 3) float64  rows are the lattice vectors a, b, c in Angstrom
      frac_coords     (n, 3) float64  fractional coordinates (Cartesian = frac_coords @ lattice)
      atomic_numbers  (n,)   int64
    Construction checks only shapes and types (CrystalError "shape", "unknown_element" for
    non-integral atomic numbers, "bad_property"); call `validate()` for the physics. Equality is
    exact equality of all fields; use `content_hash()` to compare crystals physically.
    """

    lattice: np.ndarray
    frac_coords: np.ndarray
    atomic_numbers: np.ndarray
    properties: Mapping[str, float] = field(default_factory=dict)
    id: str = ""
    provenance: Provenance = field(default_factory=Provenance)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "lattice", _float_array(self.lattice, (3, 3), "lattice"))
        set_(self, "frac_coords", _float_array(self.frac_coords, (-1, 3), "frac_coords"))
        set_(self, "atomic_numbers", _int_array(self.atomic_numbers))
        if len(self.atomic_numbers) != len(self.frac_coords):
            raise CrystalError(
                "shape",
                f"{len(self.atomic_numbers)} atomic numbers for {len(self.frac_coords)} positions",
            )
        set_(self, "properties", _properties(self.properties))
        set_(self, "id", str(self.id))
        if not isinstance(self.provenance, Provenance):
            raise CrystalError("shape", "provenance must be an xtal.Provenance")

    # ---- derived quantities -------------------------------------------------------------
    @property
    def num_atoms(self) -> int:
        return len(self.atomic_numbers)

    @property
    def volume(self) -> float:
        """Cell volume |det L| in A^3."""
        return abs(float(np.linalg.det(self.lattice)))

    @property
    def symbols(self) -> list[str]:
        return [element_symbol(z) for z in self.atomic_numbers]

    @property
    def formula(self) -> str:
        """Reduced formula in pymatgen's order, e.g. "SrTiO3"; "" for an empty cell."""
        if self.num_atoms == 0:
            return ""
        with warnings.catch_warnings():  # pymatgen warns about noble gases' electronegativity
            warnings.simplefilter("ignore")
            return Composition(" ".join(self.symbols)).reduced_formula

    @property
    def cart_coords(self) -> np.ndarray:
        """(n, 3) Cartesian positions in Angstrom, frac_coords @ lattice (read-only)."""
        return _readonly(self.frac_coords @ self.lattice)

    def lattice_parameters(self) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
        """((a, b, c) in Angstrom, (alpha, beta, gamma) in degrees)."""
        lattice = Lattice(self.lattice)
        return tuple(map(float, lattice.abc)), tuple(map(float, lattice.angles))

    # ---- transformations ----------------------------------------------------------------
    def replace(self, **fields: Any) -> "Crystal":
        """A copy with the given fields replaced (the original is unchanged)."""
        return dataclasses.replace(self, **fields)

    def validate(self, limits: ValidationLimits | None = None) -> "Crystal":
        """Return self if valid under `limits` (default ValidationLimits()); else CrystalError."""
        check_crystal_arrays(
            self.lattice, self.frac_coords, self.atomic_numbers, limits or ValidationLimits()
        )
        return self

    def canonical(self) -> "Crystal":
        """The same crystal in its Niggli-reduced cell (pymatgen `get_reduced_structure()`),
        coordinates wrapped into [0, 1); atom order and other fields kept. Needs a valid lattice."""
        lattice, frac = _canonical.niggli_cell(self.lattice, self.frac_coords)
        return self.replace(lattice=lattice, frac_coords=frac)

    def content_hash(self) -> str:
        """Hex SHA-256 identifying the physical crystal; see `xtal._canonical` for exactly what
        it is invariant to (atom order, rotation, cell choice, translation, small noise)."""
        return self._content_hash

    @cached_property
    def _content_hash(self) -> str:
        return _canonical.content_hash(self.lattice, self.frac_coords, self.atomic_numbers)

    # ---- conversions --------------------------------------------------------------------
    def to_pymatgen(self) -> Structure:
        """pymatgen Structure (same rows, coordinates, order); properties and id in .properties."""
        return _interop.to_structure(*self._arrays(), dict(self.properties), self.id)

    @classmethod
    def from_pymatgen(cls, structure: Structure, **meta: Any) -> Self:
        """From an ordered Structure; `meta` (id, properties, provenance) overrides what the
        structure carries. CrystalError for disordered or partially occupied sites."""
        return cls._from_fields(_interop.from_structure(structure), meta)

    def to_ase(self) -> Atoms:
        """ASE Atoms with pbc=True; properties and id in .info."""
        return _interop.to_atoms(*self._arrays(), dict(self.properties), self.id)

    @classmethod
    def from_ase(cls, atoms: Atoms, **meta: Any) -> Self:
        """From a fully periodic Atoms; `meta` as in `from_pymatgen`."""
        return cls._from_fields(_interop.from_atoms(atoms), meta)

    def to_cif(self) -> str:
        """Single-block P1 CIF that `from_cif` reads back to ~1e-15 (lattice up to rotation)."""
        return _cif.write_cif(self.to_pymatgen(), self.id, self.properties)

    @classmethod
    def from_cif(cls, text: str, limits: ValidationLimits | None = None, **meta: Any) -> Self:
        """Read and validate a single-structure CIF (see `autoperi_data.read_records` for files).

        Blocks without a structure (no cell, no atom sites: a journal's publication or
        powder-profile blocks) are ignored when another block holds one. CrystalError names the
        problem: parse hazards (occupancy, symmetry, truncation), then `validate(limits)`;
        "multiple_structures" for several structure blocks. `meta` as in `from_pymatgen`.
        """
        blocks = [block for _, block in _cif.split_blocks(text.splitlines(keepends=True))]
        if not blocks:
            raise CrystalError("empty", "expected one CIF data block, found none")
        structures = _cif.structure_blocks(blocks) if len(blocks) > 1 else blocks
        if len(structures) > 1:
            raise CrystalError(
                "multiple_structures", f"expected one structure, found {len(structures)} blocks"
            )
        return crystal_from_cif_block((structures or blocks)[0], limits or ValidationLimits(), meta)

    # ---- helpers ------------------------------------------------------------------------
    def _arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.lattice, self.frac_coords, self.atomic_numbers

    @classmethod
    def _from_fields(cls, fields: _interop.CrystalFields, meta: Mapping[str, Any]) -> Self:
        unknown = set(meta) - {"id", "properties", "provenance"}
        if unknown:
            raise TypeError(f"unexpected metadata {sorted(unknown)}")
        properties = {**fields.properties, **meta.get("properties", {})}
        return cls(
            fields.lattice,
            fields.frac_coords,
            fields.atomic_numbers,
            properties=properties,
            id=meta.get("id", fields.id),
            provenance=meta.get("provenance", Provenance()),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Crystal):
            return NotImplemented
        return (
            np.array_equal(self.lattice, other.lattice)
            and np.array_equal(self.frac_coords, other.frac_coords)
            and np.array_equal(self.atomic_numbers, other.atomic_numbers)
            and dict(self.properties) == dict(other.properties)
            and (self.id, self.provenance) == (other.id, other.provenance)
        )

    def __hash__(self) -> int:
        arrays = (a + 0 for a in (self.lattice, self.frac_coords))  # -0.0 == 0.0
        return hash((*(a.tobytes() for a in arrays), self.atomic_numbers.tobytes(), self.id))

    def __reduce__(self):
        fields = (*self._arrays(), dict(self.properties), self.id, self.provenance)
        return (type(self), fields)

    def __repr__(self) -> str:
        name = self.id or "?"
        return f"Crystal(id={name!r}, formula={self.formula!r}, num_atoms={self.num_atoms})"


def crystal_from_cif_block(text: str, limits: ValidationLimits, meta: Mapping[str, Any]) -> Crystal:
    """Read and validate one CIF data block (the text of a single `data_` block)."""
    parsed = _cif.parse_block(text, limits)
    crystal = Crystal._from_fields(parsed.fields, meta)
    labels = parsed.labels if parsed.symmetric else None
    check_crystal_arrays(*crystal._arrays(), limits, labels=labels)
    return crystal


def _readonly(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


def _float_array(value: Any, shape: tuple[int, int], name: str) -> np.ndarray:
    try:
        array = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise CrystalError("shape", f"{name} is not an array of numbers: {exc}") from None
    if shape[0] == -1 and array.size == 0:
        array = array.reshape(0, 3)
    if array.ndim != 2 or array.shape[1] != shape[1] or shape[0] not in (-1, array.shape[0]):
        expected = "(n, 3)" if shape[0] == -1 else str(shape)
        raise CrystalError("shape", f"{name} has shape {array.shape}, expected {expected}")
    return _readonly(array)


def _int_array(value: Any) -> np.ndarray:
    raw = np.array(value)
    if raw.ndim > 1:
        raise CrystalError("shape", f"atomic_numbers has shape {raw.shape}, expected (n,)")
    try:
        array = raw.astype(np.int64).reshape(-1)
    except (TypeError, ValueError, OverflowError) as exc:
        raise CrystalError("unknown_element", f"atomic numbers must be integers: {exc}") from None
    if not np.array_equal(array, raw.reshape(-1)):
        raise CrystalError(
            "unknown_element", f"atomic numbers must be integers, got {raw.tolist()}"
        )
    return _readonly(array)


def _properties(values: Mapping[str, Any]) -> Mapping[str, float]:
    if not isinstance(values, Mapping):
        raise CrystalError("bad_property", "properties must be a mapping of names to numbers")
    out = {}
    for key, value in values.items():
        if not isinstance(key, str) or isinstance(value, bool | str | bytes):
            raise CrystalError("bad_property", f"property {key!r}={value!r} is not a named number")
        try:
            out[key] = float(value)
        except (TypeError, ValueError):
            raise CrystalError(
                "bad_property", f"property {key!r}={value!r} is not a number"
            ) from None
    return MappingProxyType(out)
