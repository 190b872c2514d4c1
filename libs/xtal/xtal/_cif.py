"""CIF reading (pymatgen CifParser behind pre-checks, warnings turned into reasons) and writing.

Reading a block: tokenise, run the pre-checks of `_cif_checks` (cell, atom sites, occupancy,
expanded atom count, declared multiplicities), parse with pymatgen, turn its warnings into
rejections where they signal a wrong structure, and keep the file's atom order for P1 blocks.
P1 blocks are read literally (pymatgen's snapping of 0.3333 to 1/3 is for applying symmetry
operations and is turned off for them), so CIFs written by `write_cif` round-trip exactly.
"""

import logging
import re
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
from pymatgen.core import Structure, SymmOp
from pymatgen.io.cif import CifBlock, CifFile, CifParser, CifWriter

from xtal import _cif_checks as checks
from xtal._errors import CrystalError
from xtal._interop import CrystalFields, from_structure
from xtal._validate import ValidationLimits

log = logging.getLogger(__name__)

ID_TAG = "_autoperi_id"
PROPERTY_TAG = "_autoperi_property_"
_SAFE_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:+\-/=@]*")
_BLOCK_START = re.compile(r"^\s*data_", re.IGNORECASE)
_FORMULA_WARNINGS = ("Missing elements", "Incorrect stoichiometry")
_SYMOPS_CACHE: dict[tuple, tuple[list, list[str]]] = {}
_SYMOPS_CACHE_SIZE = 256
_IDENTITY = SymmOp.from_xyz_str("x, y, z")
# pymatgen compares every image of every site with every atom found so far (operations x sites x
# atoms). A space group's operations move most sites, so a crystal within max_atoms costs at most
# about 8 x max_atoms^2 (Fm-3m: 192 operations, <= 44 sites per 1,000 atoms); a list of repeated or
# nearly equal operations leaves sites in place and costs up to 192 x max_atoms^2. 1e7 comparisons
# (the bound at 1,000 atoms) take about 1.5 s.
EXPANSION_WORK_PER_ATOM_PAIR = 10


@dataclass(frozen=True)
class ParsedBlock:
    """One CIF block read into crystal fields; `labels` align with the fields' atoms."""

    name: str
    fields: CrystalFields
    labels: tuple[str, ...]
    symmetric: bool  # built by applying symmetry operations other than the identity


def split_blocks(lines: Iterable[str], max_chars: int | None = None) -> Iterator[tuple[int, str]]:
    """Yield (first line number, text) of each `data_` block; text before the first block
    (comments) is prepended to it. Lines inside semicolon text fields never start a block.
    CrystalError("too_large") once a block passes `max_chars` characters (None: no bound)."""
    current: list[str] = []
    start, in_text, seen_block, size = 1, False, False, 0
    for number, line in enumerate(lines, start=1):
        if line.startswith(";"):
            in_text = not in_text
        elif not in_text and _BLOCK_START.match(line):
            if seen_block:
                yield start, "".join(current)
                current, start, size = [], number, 0
            seen_block = True
        current.append(line)
        size += len(line)
        if max_chars is not None and size > max_chars:
            raise CrystalError(
                "too_large", f"the block starting at line {start} passes {max_chars} characters"
            )
    if seen_block:
        yield start, "".join(current)
    elif "".join(current).strip():
        raise CrystalError("cif_parse", "no 'data_' block found")


def tokenize_block(text: str) -> CifBlock:
    """The single pymatgen CifBlock of `text`; CrystalError for broken syntax."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            blocks = list(CifFile.from_str(text).data.values())
    except (ValueError, ZeroDivisionError, IndexError) as exc:
        raise CrystalError(
            "cif_incomplete",
            f"a loop_ has a number of values that does not fit its columns ({exc})",
        ) from None
    if len(blocks) != 1:
        raise CrystalError("cif_parse", f"expected one data block, found {len(blocks)}")
    return blocks[0]


def structure_blocks(texts: list[str]) -> list[str]:
    """The blocks of a file that state a structure (a cell or atom sites), in file order; a
    block that cannot be tokenised counts as one (reading it reports why). Journal CIFs add
    publication and powder-profile blocks to their structure blocks."""
    kept = []
    for text in texts:
        try:
            if checks.has_structure(tokenize_block(text)):
                kept.append(text)
        except CrystalError:
            kept.append(text)
    return kept


def parse_block(text: str, limits: ValidationLimits) -> ParsedBlock:
    """Read one CIF data block; CrystalError (never another exception) if it is not a crystal."""
    block = tokenize_block(text)
    summary = checks.summarize_block(block, limits)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        structure, notes = _build_structure(text, block, summary, limits)
    _raise_for_warnings([*notes, *(str(w.message) for w in caught)], summary)
    fields = from_structure(structure)
    labels = tuple(str(label) for label in structure.labels)
    if summary.is_p1:
        fields, labels = _file_order(fields, labels, summary.labels)
    fields = _with_tags(fields, block)
    return ParsedBlock(block.header, fields, labels, not summary.is_p1)


def _symmetry_operations(parser: CifParser, block: CifBlock) -> tuple[list, list[str]]:
    """pymatgen's symmetry operations for the block, each once, and the notes it made finding
    them, cached by the block's symmetry items (pymatgen builds a space group from its symbol in
    up to seconds)."""
    key = checks.symmetry_items(block)
    if key not in _SYMOPS_CACHE:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ops = _distinct(parser.get_symops(block))
        if len(_SYMOPS_CACHE) >= _SYMOPS_CACHE_SIZE:
            _SYMOPS_CACHE.pop(next(iter(_SYMOPS_CACHE)))
        _SYMOPS_CACHE[key] = (ops, [str(w.message) for w in caught])
    return _SYMOPS_CACHE[key]


def _distinct(ops: list) -> list:
    """The operations without repeats (same rotation and translation modulo 1, to 1e-6): a
    repeat adds no image, but pymatgen's expansion costs operations x sites x atoms."""
    seen, out = set(), []
    for op in ops:
        translation = np.round(np.round(op.translation_vector % 1.0, 6) % 1.0, 6)
        key = (tuple(np.round(op.rotation_matrix, 6).ravel()), tuple(translation))
        if key not in seen:
            seen.add(key)
            out.append(op)
    return out


def _check_expansion(
    ops: list, block: CifBlock, summary: checks.BlockSummary, limits: ValidationLimits
) -> None:
    """Count the atoms the symmetry operations generate before pymatgen does the expensive work
    (operations x sites x atoms comparisons: at most EXPANSION_WORK_PER_ATOM_PAIR x
    max_atoms^2)."""
    rotations = np.array([op.rotation_matrix for op in ops])  # (m, 3, 3)
    checks.check_operations(block, rotations)
    translations = np.array([op.translation_vector for op in ops])  # (m, 3)
    sizes = checks.orbit_sizes(checks.fractional_sites(block, snap=True), rotations, translations)
    if sizes.sum() > limits.max_atoms:
        raise CrystalError(
            "too_many_atoms",
            f"the symmetry operations expand {len(sizes)} atom sites to {int(sizes.sum())} atoms,"
            f" more than the limit of {limits.max_atoms}",
        )
    work, budget = len(ops) * len(sizes) * int(sizes.sum()), EXPANSION_WORK_PER_ATOM_PAIR
    if work > budget * limits.max_atoms**2:
        raise CrystalError(
            "bad_symmetry",
            f"{len(ops)} symmetry operations leave most of the {len(sizes)} atom sites in place"
            f" ({int(sizes.sum())} atoms): not a space group's operations (expanding them would"
            f" take {work:.1e} comparisons, more than {budget} x max_atoms^2)",
        )
    declared = checks.declared_multiplicities(block)
    for label, size, claim in zip(summary.labels, sizes, declared, strict=False):
        if claim is not None and claim != size:
            raise CrystalError(
                "multiplicity_mismatch",
                f"atom site {label!r} declares multiplicity {claim} but its symmetry images occupy"
                f" {size} distinct positions (images closer than {checks.SITE_TOLERANCE} in"
                " fractional coordinates merge)",
            )


def _build_structure(
    text: str, block: CifBlock, summary: checks.BlockSummary, limits: ValidationLimits
) -> tuple[Structure, list[str]]:
    """pymatgen's structure for the block and the parser's notes (`CifParser.warnings`);
    pymatgen's exceptions become CrystalError."""
    tolerance = 0.0 if summary.is_p1 else checks.FRAC_TOLERANCE
    notes: list[str] = []
    try:
        parser = CifParser.from_str(text, frac_tolerance=tolerance)
        if summary.is_p1:  # pymatgen expands by every listed copy of x, y, z: m x sites x atoms
            parser.get_symops = lambda _data: [_IDENTITY]
        else:
            ops, notes = _symmetry_operations(parser, block)
            _check_expansion(ops, block, summary, limits)
            parser.get_symops = lambda _data: ops  # reuse them for this parser's expansion
        structure = parser.parse_structures(primitive=False, on_error="raise")[0]
        return structure, [*notes, *parser.warnings]
    except CrystalError:
        raise
    except Exception as exc:  # pymatgen fails in many ways on bad input
        message = " ".join(str(exc).split())
        if "exceeded tolerance" in message:
            raise CrystalError(
                "duplicate_site",
                "atom sites coincide (directly or after applying the symmetry operations):"
                f" {message.split('CIF.')[-1].strip()}",
            ) from None
        raise CrystalError("cif_parse", f"pymatgen could not read the block: {message}") from None


def _raise_for_warnings(messages: list[str], summary: checks.BlockSummary) -> None:
    """Turn pymatgen warnings that signal a wrong structure into CrystalError (first rule wins)."""
    texts = [" ".join(message.split()) for message in messages]
    rules = (
        (lambda t: "implicit hydrogens" in t, "implicit_hydrogens", None),
        (lambda t: " parsed as " in t or "is not a valid Element" in t, "unknown_element", None),
        (
            lambda t: "Defaulting to P1" in t and summary.has_symmetry_keys,
            "bad_symmetry",
            "the block's space group could not be interpreted",
        ),
        (
            lambda t: "Spacegroup from" in t and summary.has_explicit_ops,
            "bad_symmetry",
            "the block's symmetry operations could not be parsed",
        ),
        (lambda t: t.startswith(_FORMULA_WARNINGS), "formula_mismatch", None),
    )
    for matches, code, message in rules:
        hit = next((text for text in texts if matches(text)), None)
        if hit is not None:
            raise CrystalError(code, message or f"pymatgen: {hit}")


def _file_order(
    fields: CrystalFields, labels: tuple[str, ...], file_labels: tuple[str, ...]
) -> tuple[CrystalFields, tuple[str, ...]]:
    """Undo pymatgen's electronegativity sort when each file row became exactly one atom."""
    row_of = {label: row for row, label in enumerate(file_labels)}
    if len(row_of) != len(file_labels) or sorted(labels) != sorted(file_labels):
        return fields, labels
    order = np.argsort([row_of[label] for label in labels], kind="stable")
    reordered = CrystalFields(
        lattice=fields.lattice,
        frac_coords=fields.frac_coords[order],
        atomic_numbers=fields.atomic_numbers[order],
        properties=fields.properties,
        id=fields.id,
    )
    return reordered, tuple(labels[i] for i in order)


def _with_tags(fields: CrystalFields, block: CifBlock) -> CrystalFields:
    """Add the id and properties that `write_cif` stores in `_autoperi_*` items."""
    properties = dict(fields.properties)
    for key, value in block.data.items():
        if key.startswith(PROPERTY_TAG) and isinstance(value, str):
            try:
                properties[key[len(PROPERTY_TAG) :]] = float(value)
            except ValueError:
                log.warning("ignoring non-numeric CIF property %s = %r", key, value)
    id_ = block.data.get(ID_TAG, fields.id)
    return CrystalFields(
        fields.lattice, fields.frac_coords, fields.atomic_numbers, properties, str(id_)
    )


def write_cif(structure: Structure, id_: str, properties: Mapping[str, float]) -> str:
    """P1 CIF text with 16 decimals (lattice parameters and coordinates round-trip to ~1e-15).

    The block is named after the id when it is a plain token (else the formula); the id and the
    properties whose names are plain tokens are stored as `_autoperi_id` and
    `_autoperi_property_<name>` items (others are dropped with a logged warning).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cif_file = CifWriter(structure, significant_figures=16).cif_file
    block = next(iter(cif_file.data.values()))
    if id_ and _SAFE_TOKEN.fullmatch(id_) and len(id_) <= 74:
        block.header = id_
        block.data[ID_TAG] = id_
    elif id_:
        log.warning("crystal id %r cannot be stored in a CIF item; it is dropped", id_)
    for name, value in properties.items():
        if _SAFE_TOKEN.fullmatch(name):
            block.data[PROPERTY_TAG + name] = repr(float(value))
        else:
            log.warning("property name %r cannot be a CIF item name; it is dropped", name)
    return str(cif_file)
