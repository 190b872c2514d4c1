"""Element symbols <-> atomic numbers (1..118), from pymatgen's periodic table."""

from functools import cache

from pymatgen.core.periodic_table import Element

from xtal._errors import CrystalError

MAX_ATOMIC_NUMBER = 118


@cache
def _symbols() -> tuple[str, ...]:
    return tuple(Element.from_Z(z).symbol for z in range(1, MAX_ATOMIC_NUMBER + 1))


@cache
def _numbers() -> dict[str, int]:
    return {symbol: z for z, symbol in enumerate(_symbols(), start=1)}


def element_symbol(atomic_number: int) -> str:
    """The symbol of an element, e.g. 26 -> "Fe"; CrystalError("unknown_element") outside 1..118."""
    if not 1 <= int(atomic_number) <= MAX_ATOMIC_NUMBER:
        raise CrystalError("unknown_element", f"atomic number {atomic_number} is not in 1..118")
    return _symbols()[int(atomic_number) - 1]


def atomic_number(symbol: str) -> int:
    """The atomic number of an element symbol (case as in the periodic table, e.g. "Fe")."""
    try:
        return _numbers()[symbol]
    except KeyError:
        raise CrystalError("unknown_element", f"{symbol!r} is not an element symbol") from None
