"""xtal: the crystal domain type of AutoPeri.

`Crystal` (immutable lattice, fractional coordinates, atomic numbers, properties, id, provenance)
with validation (`ValidationLimits`, `CrystalError` codes in `ERROR_CODES`), canonicalisation
(Niggli cell, wrapped coordinates), a content hash, conversions to pymatgen, ASE and CIF
(`xtal.convert` for the protobuf message), and the CIF block parser that dataset readers build on
(`split_cif_blocks`, `crystal_from_cif_block`; files are read by the dataset contract,
`autoperi_data.read_records`), and the sample directory writer (`write_samples`).
"""

from xtal._cif import split_blocks as split_cif_blocks
from xtal._crystal import Crystal, Provenance, crystal_from_cif_block
from xtal._elements import atomic_number, element_symbol
from xtal._errors import ERROR_CODES, CrystalError
from xtal._samples import write_samples
from xtal._symmetry import SiteSymmetry, SymmetryError, idealize, site_symmetry
from xtal._validate import ValidationLimits

__all__ = [
    "ERROR_CODES",
    "Crystal",
    "CrystalError",
    "Provenance",
    "SiteSymmetry",
    "SymmetryError",
    "ValidationLimits",
    "atomic_number",
    "crystal_from_cif_block",
    "element_symbol",
    "idealize",
    "site_symmetry",
    "split_cif_blocks",
    "write_samples",
]
