"""The one error type of `xtal` and the table of its machine-readable codes."""

from collections.abc import Mapping
from types import MappingProxyType

ERROR_CODES: Mapping[str, str] = MappingProxyType(
    {
        # The crystal itself (any source).
        "shape": "arrays of the wrong shape or dtype, or inconsistent atom counts",
        "non_finite": "a NaN or infinite lattice entry or coordinate",
        "out_of_range": "a cell length, volume per atom or coordinate beyond ValidationLimits",
        "unknown_element": "an atomic number outside 1..118 or a symbol that is not an element",
        "bad_property": "a property that is not a named real number",
        "no_atoms": "a cell without atoms",
        "too_many_atoms": "more atoms than ValidationLimits.max_atoms",
        "small_volume": "zero, near-zero or degenerate cell volume (total or per atom)",
        "overlapping_atoms": "two atoms (or an atom and its own image) closer than min_distance",
        "not_periodic": "an ASE Atoms object that is not periodic in all three directions",
        # Disorder (pymatgen, ASE and CIF input).
        "partial_occupancy": "a site with occupancy below 1 or shared by several species",
        "over_occupancy": "a site with occupancy above 1",
        "duplicate_site": "two CIF atom sites that coincide (directly or after symmetry expansion)",
        # CIF text.
        "bad_cell": "cell parameters that describe no cell (length <= 0, impossible angles)",
        "cif_incomplete": "a CIF block missing required items or values (often truncated)",
        "cif_parse": "CIF text that cannot be parsed",
        "bad_symmetry": "symmetry operations or a space group that cannot be interpreted",
        "symmetry_overlap": "symmetry images of one site closer than min_distance",
        "multiplicity_mismatch": "a declared site multiplicity the symmetry expansion contradicts",
        "formula_mismatch": "a declared chemical formula that the parsed atoms contradict",
        "implicit_hydrogens": "atoms given as groups with implicit hydrogens (e.g. water 'Wat')",
        "multiple_structures": "several data blocks where one structure was expected",
        "no_structure": "a CIF block without cell and atom sites (publication, powder profile)",
        # Files and records.
        "empty": "an empty file or record",
        "not_utf8": "bytes that are not valid UTF-8",
        "unknown_format": "a file that is neither CIF nor a CDVAE/DiffCSP CSV",
        "missing_column": "a CSV file without the required 'cif' column",
        "csv_format": "a malformed CSV row (wrong field count, unterminated quote)",
        "too_large": "a line, CIF block or decompressed file beyond the reader's size bounds",
    }
)


class CrystalError(ValueError):
    """A crystal or crystal file is invalid; `code` says why (a key of `ERROR_CODES`).

    `str(error)` is ``"<code>: <message>"``, a one-line human message naming the problem.
    """

    def __init__(self, code: str, message: str) -> None:
        if code not in ERROR_CODES:
            raise ValueError(f"unknown CrystalError code {code!r}")
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    def __reduce__(self):
        return (type(self), (self.code, self.message))
