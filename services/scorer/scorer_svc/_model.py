"""Domain types of the scorer: what to compute (`ScoreOptions`) and what came out (`Scores`).

Both cross the process boundary to the CHGNet worker (they pickle small: numpy arrays and
numbers). Units: eV/atom, eV/Angstrom, GPa, Angstrom.
"""

from dataclasses import dataclass

import numpy as np

from scorer_svc._symmetry import check_backend

DEFAULT_RELAX_STEPS = 500
DEFAULT_FMAX = 0.1  # eV/Angstrom
DEFAULT_SYMPREC = 0.1  # Angstrom
DEFAULT_MIN_DISTANCE = 0.5  # Angstrom, CDVAE's structural cutoff


@dataclass(frozen=True)
class Reference:
    """A dataset version to check novelty against (ref: branch or commit; '' = default branch)."""

    dataset: str
    ref: str = ""


@dataclass(frozen=True)
class ScoreOptions:
    """How to score (mirrors scorer.v1.ScoreOptions with the proto's defaults filled in)."""

    relax: bool = False
    max_relax_steps: int = 0  # 0: the server default (DEFAULT_RELAX_STEPS, capped by its limit)
    fmax: float = DEFAULT_FMAX
    include_forces: bool = False
    include_stress: bool = False
    include_relaxed_crystal: bool = False
    novelty_reference: Reference | None = None
    symprec: float = DEFAULT_SYMPREC
    min_valid_distance: float = DEFAULT_MIN_DISTANCE
    symmetry: str = "spglib"  # or "moyopy" or "none"

    def __post_init__(self) -> None:
        check_backend(self.symmetry)


@dataclass(frozen=True)
class Problem:
    """Why one crystal could not be scored: a short code and one sentence."""

    code: str
    message: str


@dataclass
class Scores:
    """The scores of one crystal; when `error` is set only `index`, `crystal_id`, `error` count.

    Shapes: forces (n, 3) eV/A and stress (6,) GPa in Voigt order xx yy zz yz xz xy, ASE sign
    convention (None unless forces or stress were asked for); lattice (3, 3) and frac_coords
    (n, 3) of the scored (relaxed when relax) structure. Validity flags and min_distance
    describe the input structure; space group, energies, novelty and hull values the scored one
    (novel None without a novelty reference; hull values None without a hull or outside it).
    """

    index: int
    crystal_id: str = ""
    content_hash: str = ""
    energy_per_atom: float | None = None
    unrelaxed_energy_per_atom: float | None = None
    forces: np.ndarray | None = None
    stress: np.ndarray | None = None
    lattice: np.ndarray | None = None
    frac_coords: np.ndarray | None = None
    relax_steps: int = 0
    relax_converged: bool = False
    structure_valid: bool = False
    composition_valid: bool = False
    min_distance: float = 0.0
    space_group_number: int = 0
    space_group_symbol: str = ""
    novel: bool | None = None
    matched_content_hash: str = ""
    e_above_hull: float | None = None
    formation_energy_per_atom: float | None = None
    error: Problem | None = None

    @classmethod
    def failed(cls, index: int, crystal_id: str, code: str, message: str) -> "Scores":
        """A result that carries only an error."""
        return cls(index=index, crystal_id=crystal_id, error=Problem(code, message))


@dataclass(frozen=True)
class ScorerInfo:
    """What the deployment uses (mirrors scorer.v1.GetScorerInfoResponse)."""

    potential_name: str
    potential_version: str
    hull_configured: bool
    hull_source: str
    max_batch_size: int
    max_atoms: int
