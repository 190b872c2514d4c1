"""Per-candidate data of a round: the scorer's results as JSON rows, their relaxed structures,
their selection view, and the structure fingerprints of the diversity filter."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from autoperi_data import CrystalArrays
from xtal import Crystal

from loop_svc._clients import CrystalMessage
from loop_svc._select import CandidateScore, FingerprintFn


def score_row(crystal: Crystal, scores: Any) -> dict[str, Any]:
    """The JSON row of one scored candidate (a scorer_svc.Scores); energies in eV/atom."""
    error = scores.error
    return {
        "content_hash": scores.content_hash or crystal.content_hash(),
        "formula": crystal.formula,
        "num_atoms": crystal.num_atoms,
        "energy_per_atom": scores.energy_per_atom,
        "e_above_hull": scores.e_above_hull,
        "structure_valid": bool(scores.structure_valid),
        "composition_valid": bool(scores.composition_valid),
        "novel": scores.novel,
        "space_group_number": int(scores.space_group_number),
        "space_group_symbol": scores.space_group_symbol,
        "error": f"{error.code}: {error.message}" if error is not None else "",
    }


def relaxed_messages(
    candidates: Sequence[Crystal], scores: Sequence[Any]
) -> tuple[list[CrystalMessage], list[bool]]:
    """(one message per candidate, whether it holds the relaxed structure): the candidate with
    the relaxed cell of its scorer_svc.Scores, or the candidate as sampled when the scorer sent
    no relaxed cell (a failed score)."""
    from xtal import convert

    from loop_svc._yield_eval import relaxed_crystal

    messages, relaxed = [], []
    for crystal, score in zip(candidates, scores, strict=True):
        scored = relaxed_crystal(crystal, score)
        relaxed.append(scored is not None and scored is not crystal)
        messages.append(convert.to_proto(scored if relaxed[-1] else crystal))
    return messages, relaxed


def candidate_scores(
    rows: Sequence[dict[str, Any]], per_composition: bool = False
) -> list[CandidateScore]:
    """The selection's view of the rows.

    `per_composition` (for a scorer without a hull): rank by the energy per atom above the
    lowest one of the same formula this round, E - min_{same formula} E, instead of the absolute
    energy, so that targets with low absolute energies do not take every pick.
    """
    fields = (
        "content_hash", "energy_per_atom", "e_above_hull", "structure_valid",
        "composition_valid", "novel", "error",
    )  # fmt: skip
    scores = [CandidateScore(**{k: row[k] for k in fields}) for row in rows]
    if not per_composition:
        return scores
    lowest: dict[str, float] = {}
    for row in rows:
        if row["energy_per_atom"] is not None:
            energy = row["energy_per_atom"]
            lowest[row["formula"]] = min(energy, lowest.get(row["formula"], energy))
    return [
        replace(s, energy_per_atom=s.energy_per_atom - lowest[r["formula"]])
        if s.energy_per_atom is not None
        else s
        for s, r in zip(scores, rows, strict=True)
    ]


def fingerprint_fn(crystals: Sequence[Crystal]) -> FingerprintFn:
    """indices -> (k, 61) CrystalNN structure fingerprints (NaN rows where it fails)."""
    from autoperi_eval import fingerprint_arrays

    def fingerprints(indices: Sequence[int]) -> np.ndarray:
        rows = []
        for i in indices:
            c = crystals[i]
            value = fingerprint_arrays(CrystalArrays.of(c))
            struct = np.asarray(value["struct"], dtype=float)
            rows.append(struct if value["ok"] else np.full_like(struct, np.nan))
        return np.stack(rows) if rows else np.zeros((0, 61))

    return fingerprints
