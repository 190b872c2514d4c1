"""Stability with CHGNet: E_hull single point and after a bounded relaxation (SCIENCE 5.5).

Samples and hull reference (training + validation crystals) are scored the same way: single point
against the single-point hull, relaxed (same optimiser, steps and fmax) against the relaxed hull.
Only reference crystals whose chemical system lies inside some evaluated sample's chemical system
are scored (lazily, and cached on disk), which is all the hull under those samples needs. With a
hull reference file (`EvalSettings.hull_file`) its energies are used instead and nothing of the
reference is scored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from autoperi_data import CrystalArrays
from pymatgen.core import Composition

from ._chgnet import RelaxSettings
from ._context import Context
from ._hull import Hull, relevant_entries


@dataclass
class Stability:
    """Per-sample arrays over the property subset (NaN where not computed or undefined)."""

    e_hull_sp: np.ndarray
    e_relaxed: np.ndarray
    relax_steps: np.ndarray
    e_hull_relaxed: np.ndarray
    formation_relaxed: np.ndarray
    n_reference_sp: int
    n_reference_relaxed: int


def _reference(
    ctx: Context, targets: list[Composition]
) -> tuple[list[CrystalArrays], list[Composition]]:
    records = ctx.hull_records()
    comps = [r.structure.composition for r in records]
    wanted = relevant_entries(comps, targets)
    return [CrystalArrays.from_pymatgen(records[i].structure) for i in wanted], [
        comps[i] for i in wanted
    ]


def _hull_of(
    comps: list[Composition], energies: np.ndarray, targets: list[Composition], sample_e: np.ndarray
) -> np.ndarray:
    hull = Hull(comps, energies)
    return np.array([hull.e_above_hull(c, e) for c, e in zip(targets, sample_e, strict=True)])


def formation_of(
    comps: list[Composition],
    energies: np.ndarray,
    targets: list[Composition],
    sample_e: np.ndarray,
    elemental: dict[str, float] | None,
) -> np.ndarray:
    """Formation energies per atom (eV/atom) of samples (compositions, energies per atom)
    against the lowest single-element reference entries, else `elemental` (symbol -> eV/atom,
    a hull file's elemental references); NaN where an element has neither."""
    hull = Hull(comps, energies, elemental)
    return np.array([hull.formation_energy(c, e) for c, e in zip(targets, sample_e, strict=True)])


def _reference_energies(
    ctx: Context, targets: list[Composition], relax: RelaxSettings | None
) -> tuple[list[Composition], np.ndarray]:
    """(compositions, energies per atom) of the reference entries under `targets`: single
    points (`relax` None) or relaxed; from the settings' hull reference file when there is one,
    else scored now (cached)."""
    reference = ctx.hull_reference()
    if reference is not None:
        wanted = relevant_entries(reference.compositions, targets)
        energies = reference.e_single_point if relax is None else reference.e_relaxed
        return [reference.compositions[i] for i in wanted], energies[wanted]
    payloads, comps = _reference(ctx, targets)
    if relax is None:
        energies, _ = ctx.scorer.single_point(payloads, "chgnet hull reference", ctx.progress)
    else:
        energies, _ = ctx.scorer.relax(payloads, relax, "relax hull reference", ctx.progress)
    return comps, energies


def stability(
    ctx: Context, payloads: list[CrystalArrays], comps: list[Composition], e_sp: np.ndarray
) -> Stability:
    """E_hull of the property subset (single point) and of its first `relax_samples` (relaxed)."""
    settings = ctx.settings
    with ctx.stage("hull_single_point"):
        ref_comps, ref_e = _reference_energies(ctx, comps, None)
        e_hull_sp = _hull_of(ref_comps, ref_e, comps, e_sp)
        n_ref_sp = len(ref_comps)
    n_relax = min(settings.relax_samples, len(payloads))
    e_relaxed = np.full(len(payloads), np.nan)
    steps = np.full(len(payloads), -1, dtype=np.int64)
    e_hull_relaxed = np.full(len(payloads), np.nan)
    formation_relaxed = np.full(len(payloads), np.nan)
    n_ref_relaxed = 0
    if n_relax > 0:
        relax = RelaxSettings(steps=settings.relax_steps, fmax=settings.relax_fmax)
        with ctx.stage("relax_samples"):
            e_r, st = ctx.scorer.relax(payloads[:n_relax], relax, "relax samples", ctx.progress)
            e_relaxed[:n_relax], steps[:n_relax] = e_r, st
        with ctx.stage("hull_relaxed"):
            ref_comps, ref_e = _reference_energies(ctx, comps[:n_relax], relax)
            n_ref_relaxed = len(ref_comps)
            e_hull_relaxed[:n_relax] = _hull_of(ref_comps, ref_e, comps[:n_relax], e_r)
            reference = ctx.hull_reference()
            elemental = reference.elemental if reference is not None else None
            formation_relaxed[:n_relax] = formation_of(
                ref_comps, ref_e, comps[:n_relax], e_r, elemental
            )
    return Stability(
        e_hull_sp, e_relaxed, steps, e_hull_relaxed, formation_relaxed, n_ref_sp, n_ref_relaxed
    )


def stability_summary(
    stab: Stability, thresholds: tuple[float, ...], max_steps: int
) -> dict[str, float]:
    """Means and stable shares (over samples with a defined E_hull); a relaxation converged when
    it stopped before `max_steps`."""
    out: dict[str, float] = {}
    for name, values in (("sp", stab.e_hull_sp), ("relaxed", stab.e_hull_relaxed)):
        defined = values[np.isfinite(values)]
        out[f"e_hull_{name}_n_defined"] = len(defined)
        out[f"e_hull_{name}_mean"] = float(defined.mean()) if len(defined) else float("nan")
        out[f"e_hull_{name}_median"] = float(np.median(defined)) if len(defined) else float("nan")
        for t in thresholds:
            share = float((defined <= t).mean()) if len(defined) else float("nan")
            out[f"stable_{name}_le_{t:g}"] = share
    ran = stab.relax_steps[stab.relax_steps >= 0]
    out["relax_n"] = len(ran)
    out["relax_mean_steps"] = float(ran.mean()) if len(ran) else float("nan")
    out["relax_converged"] = float((ran < max_steps).mean()) if len(ran) else float("nan")
    formation = stab.formation_relaxed[np.isfinite(stab.formation_relaxed)]
    out["formation_relaxed_n_defined"] = len(formation)
    out["formation_relaxed_median"] = float(np.median(formation)) if len(formation) else math.nan
    out["hull_reference_scored_sp"] = stab.n_reference_sp
    out["hull_reference_scored_relaxed"] = stab.n_reference_relaxed
    return out
