"""Checks on a tokenised CIF block before pymatgen builds a structure from it.

They turn the hazards pymatgen accepts silently or fails on obscurely into named errors, and bound
the work: a block whose atom count exceeds `max_atoms` is rejected before any expansion.
"""

import math
import re
from dataclasses import dataclass

import numpy as np
from pymatgen.io.cif import CifBlock, str2float

from xtal._elements import MAX_ATOMIC_NUMBER, element_symbol
from xtal._errors import CrystalError
from xtal._interop import OCCUPANCY_TOLERANCE
from xtal._validate import ValidationLimits

SITE_TOLERANCE = 1e-4  # pymatgen CifParser's default: images closer than this (fractional) merge
FRAC_TOLERANCE = 1e-4  # pymatgen CifParser's default snapping of 0.3333 -> 1/3 (symmetric blocks)
_CELL_KEYS = ("a", "b", "c", "alpha", "beta", "gamma")
_OPS_KEYS = (
    "_symmetry_equiv_pos_as_xyz",
    "_symmetry_equiv_pos_as_xyz_",
    "_space_group_symop_operation_xyz",
    "_space_group_symop_operation_xyz_",
)
_SYMBOL_KEY = re.compile(r"^_(symmetry_space_group_name|space_group_name)")
_NUMBER_KEYS = ("_space_group_IT_number", "_symmetry_Int_Tables_number")
_FLOATS_PER_CHUNK = 2_000_000
_TYPE_SYMBOL = re.compile(r"([A-Z][a-z]{0,2})(\d*[+-]?|[+-]\d*)")
_GROUP_SYMBOLS = ("Wat", "wat", "Ow", "Hw", "OH", "NO3")
_ELEMENTS = frozenset([*(element_symbol(z) for z in range(1, MAX_ATOMIC_NUMBER + 1)), "D", "T"])
_OP_TEXT = re.compile(r"[\sxyzXYZ0-9+\-*/.]+(,[\sxyzXYZ0-9+\-*/.]+){2}")
_STRUCTURE_KEYS = ("_cell_length_", "_cell_angle_", "_atom_site_fract_", "_atom_site_cartn_")
MAX_OPERATIONS = 192  # the most symmetry operations of a space group (F m -3 m, conventional)
# pymatgen parses an operation with regexes whose time grows with the cube of a number's length
# (a 1,600-digit translation: seconds): longer texts and numbers are refused before it sees them
MAX_OPERATION_CHARS = 200  # 'x+0.3333333333333333, y+0.6666666666666666, z+0.5' is 51
_LONG_NUMBER = re.compile(r"[\d.]{33,}")  # 17 significant digits is double precision


@dataclass(frozen=True)
class BlockSummary:
    """What the pre-checks learnt about a block."""

    labels: tuple[str, ...]  # atom_site labels in file order
    is_p1: bool  # only the identity operation (explicitly or by default)
    has_symmetry_keys: bool  # the block states some symmetry (ops, symbol or number)
    has_explicit_ops: bool


def summarize_block(block: CifBlock, limits: ValidationLimits) -> BlockSummary:
    """Check that the block holds a structure, then its symmetry operation count, cell, atom
    sites and occupancies; CrystalError on the first problem."""
    if not has_structure(block):
        raise CrystalError(
            "no_structure",
            f"no crystal structure in block {block_name(block)} (e.g. a publication or"
            " powder-profile block)",
        )
    _check_operation_count(block)
    _check_cell(block, limits)
    labels = _check_atom_sites(block, limits)
    _check_type_symbols(block)
    _check_occupancies(block, labels)
    explicit = any(_values(block, key) for key in _OPS_KEYS)
    symmetry_keys = explicit or any(_is_symmetry_key(key) for key in block.data)
    return BlockSummary(tuple(labels), _is_p1(block), symmetry_keys, explicit)


def has_structure(block: CifBlock) -> bool:
    """Whether the block states a cell or atom sites (journal CIFs add publication and
    powder-profile blocks that state neither)."""
    return any(key.lower().startswith(_STRUCTURE_KEYS) for key in block.data)


def block_name(block: CifBlock) -> str:
    """The block's name quoted for a message: escapes shown as such, at most 80 characters."""
    name = block.header
    return repr(name if len(name) <= 80 else name[:80] + "...")


def _check_operation_count(block: CifBlock) -> None:
    """At most MAX_OPERATIONS operations, each at most MAX_OPERATION_CHARS long with no number
    of over 32 characters (CrystalError "bad_symmetry"), before any is parsed."""
    count = max(len(_values(block, key)) for key in _OPS_KEYS)
    if count > MAX_OPERATIONS:
        raise CrystalError(
            "bad_symmetry",
            f"the block lists {count} symmetry operations; a space group has at most"
            f" {MAX_OPERATIONS}",
        )
    for op in (op for key in _OPS_KEYS for op in _values(block, key)):
        if len(op) > MAX_OPERATION_CHARS or _LONG_NUMBER.search(op):
            raise CrystalError(
                "bad_symmetry",
                f"symmetry operation {_shown(op)} ({len(op)} characters) is too long: at most"
                f" {MAX_OPERATION_CHARS} characters, numbers at most 32",
            )


def _values(block: CifBlock, key: str) -> list[str]:
    value = block.data.get(key)
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _number(block: CifBlock, key: str, what: str) -> float:
    values = _values(block, key)
    if not values:
        raise CrystalError("cif_incomplete", f"{what} ({key}) is missing (truncated file?)")
    return _parse_number(values[0], what)


def _parse_number(text: str, what: str) -> float:
    if text.strip() in ("?", "."):
        raise CrystalError("cif_incomplete", f"{what} is not given ({text.strip()!r})")
    try:
        value = float(str2float(text))
    except (ValueError, TypeError):
        raise CrystalError("cif_parse", f"{what} {_shown(text)} is not a number") from None
    if not math.isfinite(value):
        raise CrystalError("non_finite", f"{what} is {_shown(text)}")
    return value


def _shown(text: str) -> str:
    """A value quoted for a message, at most 40 characters of it."""
    text = text.strip()
    return repr(text if len(text) <= 40 else text[:40] + "...")


def _check_cell(block: CifBlock, limits: ValidationLimits) -> None:
    keys = {
        name: ("_cell_length_" if len(name) == 1 else "_cell_angle_") + name for name in _CELL_KEYS
    }
    if not any(_values(block, key) for key in keys.values()):
        raise CrystalError(
            "cif_incomplete", "the block has atom sites but no cell (_cell_length_a, ...)"
        )
    values = {name: _number(block, key, f"cell parameter {name}") for name, key in keys.items()}
    lengths = [values[k] for k in ("a", "b", "c")]
    angles = [values[k] for k in ("alpha", "beta", "gamma")]
    if min(lengths) <= 0:
        raise CrystalError("bad_cell", f"cell lengths {lengths} must all be positive")
    if max(lengths) > limits.max_length:
        raise CrystalError(
            "out_of_range",
            f"cell out of range: lengths {lengths} A, beyond the limit of {limits.max_length:g} A",
        )
    if not all(0 < angle < 180 for angle in angles):
        raise CrystalError("bad_cell", f"cell angles {angles} must lie strictly between 0 and 180")
    if sum(angles) > 360 or any(2 * angle > sum(angles) for angle in angles):
        raise CrystalError(
            "bad_cell",
            f"cell angles {angles} make no cell: each angle must be at most the sum of the other"
            " two, and all three sum to at most 360",
        )
    cosines = [math.cos(math.radians(angle)) for angle in angles]
    gram = 1 - sum(c * c for c in cosines) + 2 * math.prod(cosines)
    volume = math.prod(lengths) * math.sqrt(max(gram, 0.0))
    if volume < limits.min_volume or volume == 0.0:
        raise CrystalError(
            "small_volume",
            f"cell volume {volume:.4g} A^3 is below the minimum {limits.min_volume} A^3",
        )


def _check_atom_sites(block: CifBlock, limits: ValidationLimits) -> list[str]:
    axes = [f"_atom_site_fract_{axis}" for axis in "xyz"]
    columns = [_values(block, key) for key in axes]
    if not any(columns):
        if _values(block, "_atom_site_Cartn_x"):
            raise CrystalError(
                "cif_incomplete",
                "only Cartesian atom positions are given; fractional ones are needed",
            )
        raise CrystalError("no_atoms", "the block has no atom sites (_atom_site_fract_x, ...)")
    labels = _values(block, "_atom_site_label")
    if not labels:
        raise CrystalError("cif_incomplete", "the atom sites have no _atom_site_label")
    if len({len(column) for column in [*columns, labels]}) != 1:
        raise CrystalError("cif_incomplete", "the atom site columns have different lengths")
    if len(labels) > limits.max_atoms:
        raise CrystalError(
            "too_many_atoms",
            f"{len(labels)} atom sites exceed the limit of {limits.max_atoms} atoms",
        )
    for label, *coords in zip(labels, *columns, strict=True):
        for axis, text in zip("xyz", coords, strict=True):
            _check_coordinate(text, f"coordinate {axis} of atom site {label!r}", limits)
    return labels


def _check_coordinate(text: str, what: str, limits: ValidationLimits) -> None:
    """A finite fractional coordinate within `max_frac_coord` (pymatgen wraps 1e308 to 0)."""
    value = _parse_number(text, what)
    if abs(value) > limits.max_frac_coord:
        raise CrystalError(
            "out_of_range",
            f"coordinate out of range: {what} is {_shown(text)} (|x| must be at most"
            f" {limits.max_frac_coord:g}; never wrapped)",
        )


def _check_type_symbols(block: CifBlock) -> None:
    """Type symbols must name elements (an oxidation suffix such as "Fe3+" is fine): pymatgen
    reads an unknown "Bq" as boron without a warning. Water-like groups ("Wat", "Ow", ...) are
    left to pymatgen, whose warnings reject them."""
    for symbol in _values(block, "_atom_site_type_symbol"):
        match = _TYPE_SYMBOL.fullmatch(symbol.strip())
        if symbol.startswith(_GROUP_SYMBOLS):
            continue
        if match is None or match.group(1) not in _ELEMENTS:
            raise CrystalError("unknown_element", f"atom type symbol {symbol!r} is not an element")


def _check_occupancies(block: CifBlock, labels: list[str]) -> None:
    for label, text in zip(labels, _values(block, "_atom_site_occupancy"), strict=False):
        occupancy = _parse_number(text, f"occupancy of atom site {label!r}")
        if occupancy > 1 + OCCUPANCY_TOLERANCE:
            raise CrystalError(
                "over_occupancy", f"atom site {label!r} has occupancy {occupancy:g} > 1"
            )
        if occupancy < 1 - OCCUPANCY_TOLERANCE:
            raise CrystalError(
                "partial_occupancy", f"atom site {label!r} has partial occupancy {occupancy:g}"
            )


def symmetry_items(block: CifBlock) -> tuple[tuple[str, str], ...]:
    """The block's items that define its symmetry operations (a cache key)."""
    return tuple(
        (key, str(value)) for key, value in sorted(block.data.items()) if _is_symmetry_key(key)
    )


def _is_symmetry_key(key: str) -> bool:
    return key in _OPS_KEYS or bool(_SYMBOL_KEY.match(key)) or key.startswith(_NUMBER_KEYS)


def _is_p1(block: CifBlock) -> bool:
    for key in _OPS_KEYS:
        ops = _values(block, key)
        if ops:
            return {re.sub(r"[\s']", "", op).lower() for op in ops} == {"x,y,z"}
    symbols = [v for key in block.data if _SYMBOL_KEY.match(key) for v in _values(block, key)]
    if symbols:
        return all(re.sub(r"[\s_'\"]", "", s).lower() == "p1" for s in symbols)
    numbers = [v for key in block.data if key.startswith(_NUMBER_KEYS) for v in _values(block, key)]
    return all(v.strip() == "1" for v in numbers)


def check_operations(block: CifBlock, rotations: np.ndarray) -> None:
    """CrystalError("bad_symmetry") unless every explicit operation is an x, y, z expression
    and every rotation part (m, 3, 3) is an integer matrix with determinant +-1."""
    for key in _OPS_KEYS:
        for op in _values(block, key):
            if not _OP_TEXT.fullmatch(op.strip().strip("'\"")):
                raise CrystalError("bad_symmetry", f"symmetry operation {op!r} could not be parsed")
    integral = np.allclose(rotations, np.rint(rotations))
    if not integral or not np.allclose(np.abs(np.linalg.det(rotations)), 1.0):
        raise CrystalError("bad_symmetry", "the symmetry operations are not crystallographic")


def fractional_sites(block: CifBlock, snap: bool) -> np.ndarray:
    """(r, 3) atom-site coordinates as pymatgen reads them (0.3333 -> 1/3 when `snap`)."""
    columns = [_values(block, f"_atom_site_fract_{axis}") for axis in "xyz"]
    coords = np.array([[str2float(v) for v in column] for column in columns]).T.reshape(-1, 3)
    if snap:
        for ideal in (1 / 3, 2 / 3):
            coords[np.abs(coords / ideal - 1) <= FRAC_TOLERANCE] = ideal
    return coords


def orbit_sizes(
    coords: np.ndarray,  # (r, 3) fractional
    rotations: np.ndarray,  # (m, 3, 3) acting on column vectors
    translations: np.ndarray,  # (m, 3)
) -> np.ndarray:
    """(r,) number of distinct symmetry images of each site, merging images closer than
    SITE_TOLERANCE in every fractional component (pymatgen's criterion)."""
    images = np.einsum("mij,rj->rmi", rotations, coords) + translations  # (r, m, 3)
    m = images.shape[1]
    earlier = np.tril(np.ones((m, m), dtype=bool), k=-1)  # (m, m): j < k
    chunk = max(1, _FLOATS_PER_CHUNK // (3 * m * m))
    sizes = []
    for start in range(0, len(coords), chunk):
        part = images[start : start + chunk]
        diff = part[:, :, None, :] - part[:, None, :, :]  # (c, m, m, 3)
        close = np.all(np.abs(diff - np.rint(diff)) < SITE_TOLERANCE, axis=-1) & earlier
        sizes.append(m - np.any(close, axis=-1).sum(axis=-1))
    return np.concatenate(sizes) if sizes else np.zeros(0, dtype=np.int64)


def declared_multiplicities(block: CifBlock) -> list[int | None]:
    """Per atom site, the declared _atom_site_symmetry_multiplicity (None where not given)."""
    out: list[int | None] = []
    for text in _values(block, "_atom_site_symmetry_multiplicity"):
        try:
            out.append(int(text))
        except ValueError:
            out.append(None)
    return out
