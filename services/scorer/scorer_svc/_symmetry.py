"""Space groups of scored structures: spglib (the default), moyopy, or none; with a cache.

spglib on the cell pymatgen's `SpacegroupAnalyzer` builds is what pymatgen users and
`autoperi eval` get.
moyopy (the Rust successor of spglib, a pymatgen symmetry backend) finds the group ~10x faster
(0.4 ms vs 4.6 ms per MP-20 test crystal) and gives the same number for 99.3 % of the 9,046
MP-20 and 99.0 % of the 3,785 Perov-5 test crystals at symprec 0.1 (96.9 % of Perov-5 at
0.01). Its tolerances are not spglib's: near an edge it often finds the higher group (Perov-5
P4mm vs P4/mmm), and it can differ at every symprec (MP-20 Mn3GaC, Pm-3m for spglib and
Materials Project, R-3m for moyopy 0.21). Symbols are spglib's short Hermann-Mauguin symbols of
the group's standard setting either way.
"""

import logging
from collections import OrderedDict
from functools import cache

BACKENDS = ("spglib", "moyopy", "none")
_ANGLE_TOLERANCE = 5.0  # degrees, SpacegroupAnalyzer's default


class SymmetryCache:
    """(number, symbol) by (content hash, symprec, backend), least recently used dropped
    beyond `size` entries (0: nothing kept)."""

    def __init__(self, size: int = 0) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[str, float, str], tuple[int, str]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def space_group(
        self, structure, symprec: float, backend: str, key: str = ""
    ) -> tuple[int, str]:
        """`space_group(structure, ...)`, looked up in or added to the cache when `key` (the
        content hash of this very structure) is given."""
        if not key or self.size <= 0:
            return space_group(structure, symprec, backend)
        entry = (key, symprec, backend)
        found = self._entries.get(entry)
        if found is not None:
            self._entries.move_to_end(entry)
            return found
        found = self._entries[entry] = space_group(structure, symprec, backend)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return found


def check_backend(backend: str) -> None:
    """ValueError naming the choices unless `backend` is one of `BACKENDS`."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown symmetry backend {backend!r}; use one of {BACKENDS}")


def space_group(structure, symprec: float, backend: str) -> tuple[int, str]:
    """(international number, short symbol) of a pymatgen Structure; (0, "") when the search
    fails or `backend` is "none". ValueError for an unknown backend."""
    check_backend(backend)
    if backend == "none":
        return 0, ""
    try:
        return (_moyopy if backend == "moyopy" else _spglib)(structure, symprec)
    except Exception:  # undetermined: 0 and "" as the proto says
        return 0, ""


def _spglib(structure, symprec: float) -> tuple[int, str]:
    """spglib's dataset of the cell `SpacegroupAnalyzer(structure, symprec)` hands it (atom
    types by element, pymatgen's angle tolerance of 5 degrees), without the analyzer's
    per-site species bookkeeping (0.6 ms per crystal, as much as spglib on a P1 cell)."""
    import spglib

    cell = (structure.lattice.matrix, structure.frac_coords, structure.atomic_numbers)
    dataset = spglib.get_symmetry_dataset(cell, symprec=symprec, angle_tolerance=_ANGLE_TOLERANCE)
    if dataset is None:
        return 0, ""
    return int(dataset.number), str(dataset.international)


def _moyopy(structure, symprec: float) -> tuple[int, str]:
    moyopy = _moyopy_module()
    cell = moyopy.Cell(
        structure.lattice.matrix.tolist(), structure.frac_coords.tolist(), structure.atomic_numbers
    )
    number = int(moyopy.MoyoDataset(cell, symprec=symprec).number)
    return number, _symbols()[number]


@cache
def _moyopy_module():
    import moyopy

    logging.getLogger("moyo").setLevel(logging.ERROR)  # it logs every dropped operation
    return moyopy


@cache
def _symbols() -> dict[int, str]:
    """spglib's short symbol of each group's standard setting (its first Hall number)."""
    import spglib

    symbols: dict[int, str] = {}
    for hall in range(1, 531):
        kind = spglib.get_spacegroup_type(hall)
        symbols.setdefault(int(kind.number), str(kind.international_short))
    return symbols
