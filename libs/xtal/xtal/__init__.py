"""xtal: the crystal domain type of AutoPeri.

`Crystal` (immutable lattice, fractional coordinates, atomic numbers, properties, id, provenance)
with validation (`ValidationLimits`, `CrystalError` codes in `ERROR_CODES`), canonicalisation
(Niggli cell, wrapped coordinates), a content hash, conversions to pymatgen, ASE and CIF
(`xtal.convert` for the protobuf message), and streaming readers for CIF and CDVAE/DiffCSP CSV
files (`read_records`, `summarize_records`, `load_split_stats`).
"""

from xtal._crystal import Crystal, Provenance
from xtal._elements import atomic_number, element_symbol
from xtal._errors import ERROR_CODES, CrystalError
from xtal._readers import Record, read_records
from xtal._summary import LoadStats, RecordSummary, load_split_stats, summarize_records
from xtal._symmetry import SiteSymmetry, SymmetryError, idealize, site_symmetry
from xtal._validate import ValidationLimits

__all__ = [
    "ERROR_CODES",
    "Crystal",
    "CrystalError",
    "LoadStats",
    "Provenance",
    "Record",
    "RecordSummary",
    "SiteSymmetry",
    "SymmetryError",
    "ValidationLimits",
    "atomic_number",
    "element_symbol",
    "idealize",
    "load_split_stats",
    "read_records",
    "site_symmetry",
    "summarize_records",
]
