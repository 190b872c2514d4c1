"""What one sample asks for (`SampleSpec`), and the checks and draws that turn requests into
specs: compositions, per-sample seeds, element restrictions and atom-count ranges."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from pymatgen.core import Composition, Element

MAX_ATOMS = 100


@dataclasses.dataclass(frozen=True)
class SampleSpec:
    """One crystal to generate.

    seed: the torch seed of this sample alone (its atom count and base noise are drawn from it,
        so a sample does not depend on the batch it runs in; see `sample_seed`);
    atomic_numbers: (n,) the cell's atoms for crystal structure prediction; None asks for a de
        novo crystal, whose atom count is drawn from the training histogram within
        [min_atoms, max_atoms] (max_atoms 0: no upper bound) and whose types are restricted to
        `elements` (atomic numbers; empty: any the model knows);
    required_elements: de novo only, atomic numbers every sample contains (each at least once);
        a subset of `elements` when both are given, and no more of them than `max_atoms`
        (`check_required` says why a spec breaks this);
    conditions: property -> target value, for checkpoints that take conditions (a condition a
        checkpoint cannot honour is an error, never ignored);
    index: the sample's position among the request's samples of the same cell (0, 1, ...);
        template models serve the index-th best template, so k samples are k templates; None
        counts equal cells within one `sample` call instead.
    """

    seed: int
    atomic_numbers: np.ndarray | None = None
    elements: tuple[int, ...] = ()
    min_atoms: int = 1
    max_atoms: int = 0
    conditions: Mapping[str, float] = dataclasses.field(default_factory=dict)
    index: int | None = None
    required_elements: tuple[int, ...] = ()

    @property
    def de_novo(self) -> bool:
        return self.atomic_numbers is None


def check_required(spec: SampleSpec) -> None:
    """ValueError naming `required_elements` when they are not a subset of `elements` (both
    given), or more than `max_atoms` of them, or given for a CSP spec."""
    required = set(spec.required_elements)
    if not required:
        return
    if not spec.de_novo:
        raise ValueError("required_elements is for de novo generation only")
    outside = sorted(required - set(spec.elements)) if spec.elements else []
    if outside:
        names = ", ".join(Element.from_Z(z).symbol for z in outside)
        raise ValueError(f"required_elements {names} are not among the allowed elements")
    if spec.max_atoms and len(required) > spec.max_atoms:
        raise ValueError(
            f"required_elements has {len(required)} elements but max_atoms is {spec.max_atoms}"
        )


def sample_seed(seed: int, index: int, attempt: int = 0) -> int:
    """The torch seed of sample `index` (attempt `attempt`) of a request with `seed`: a
    SeedSequence mix, < 2^63."""
    return mix_seeds([seed, index] if attempt == 0 else [seed, index, attempt])


def mix_seeds(entropy: Sequence[int]) -> int:
    """A torch seed (< 2^63) mixed from non-negative integers by a SeedSequence."""
    state = np.random.SeedSequence(list(entropy)).generate_state(2, dtype=np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


def parse_composition(text: str | Composition) -> np.ndarray:
    """Atomic numbers (n,) of one cell of a formula such as "SrTiO3" or "Sr2Ti2O6".

    Raises ValueError naming the problem for unknown elements, fractional amounts, empty or
    oversized cells.
    """
    try:
        comp = text if isinstance(text, Composition) else Composition(str(text))
    except (ValueError, KeyError) as exc:
        raise ValueError(f"cannot parse composition {text!r}: {exc}") from None
    unknown = [str(el) for el in comp if not isinstance(el, Element)]
    if unknown:
        raise ValueError(f"composition {text!r} has unknown elements: {', '.join(unknown)}")
    amounts = {el.Z: amt for el, amt in comp.element_composition.items()}
    if not amounts or any(abs(a - round(a)) > 1e-6 or a <= 0 for a in amounts.values()):
        raise ValueError(f"composition {text!r} needs whole, positive numbers of atoms per cell")
    numbers = np.concatenate([np.full(round(a), z) for z, a in sorted(amounts.items())])
    if len(numbers) > MAX_ATOMS:
        raise ValueError(f"composition {text!r} has {len(numbers)} atoms; at most {MAX_ATOMS}")
    return numbers.astype(np.int64)


def element_numbers(
    elements: Sequence[str], max_z: int, field: str = "de novo elements"
) -> tuple[int, ...]:
    """The sorted atomic numbers of element symbols; ValueError naming `field` and the unknown
    symbols or the elements beyond Z = `max_z`."""
    unknown = [s for s in elements if not Element.is_valid_symbol(s)]
    if unknown:
        names = ", ".join(map(repr, unknown))
        raise ValueError(f"{field} has unknown symbols: {names}")
    numbers = {s: Element(s).Z for s in elements}
    beyond = [s for s, z in numbers.items() if z > max_z]
    if beyond:
        raise ValueError(f"{field} {', '.join(beyond)} are beyond Z = {max_z}")
    return tuple(sorted(set(numbers.values())))


def atom_count_weights(counts: Sequence[int], lo: int, hi: int) -> torch.Tensor:
    """The histogram `counts` (crystals with n atoms at index n) restricted to [lo, hi] atoms,
    float64 (len(counts),); ValueError naming the range when it holds no training crystal."""
    weights = torch.tensor(counts, dtype=torch.float64)
    n = torch.arange(len(weights))
    inside = torch.where((n >= lo) & (n <= hi), weights, 0.0)
    if not weights.sum() > 0:
        raise ValueError("the checkpoint has no atom-count histogram for de novo generation")
    if not inside.sum() > 0:
        have = weights.nonzero()
        raise ValueError(
            f"no training crystal has {lo}..{hi} atoms (the training cells have "
            f"{int(have.min())}..{int(have.max())} atoms): widen min_atoms / max_atoms"
        )
    return inside


def atom_count_range(counts: Sequence[int], lo: int, hi: int) -> tuple[int, int]:
    """The fewest and most atoms in [lo, hi] with training mass (ValueError if none)."""
    have = atom_count_weights(counts, lo, hi).nonzero()
    return int(have.min()), int(have.max())
