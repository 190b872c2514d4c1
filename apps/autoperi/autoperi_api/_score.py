"""`score`: CHGNet energy, validity, space group (and relaxation) of crystals, in this process."""

from __future__ import annotations

from collections.abc import Sequence

from scorer_svc import ScoreOptions, Scores, score_in_process
from xtal import Crystal

__all__ = ["Scores", "score"]


def score(
    crystals: Sequence[Crystal], relax: bool = False, symmetry: str = "spglib"
) -> list[Scores]:
    """One `Scores` per crystal, in order: energy per atom (eV, CHGNet), structural and
    compositional validity, minimum distance and space group (`symmetry`: spglib, moyopy or
    none); with `relax`, a bounded CHGNet relaxation first (then the relaxed structure's). The
    scorer service's core runs here, its CHGNet workers started and stopped by this call."""
    options = ScoreOptions(relax=relax, symmetry=symmetry)
    return score_in_process(list(crystals), options)
