"""De novo generation metrics: validity, coverage, property distances, beyond (SCIENCE 5.1-5.5)."""

from __future__ import annotations

import numpy as np
from autoperi_data import CrystalArrays
from autoperi_potential import MODEL_NAME

from ._basic import Outcome, basic_table, validity_metrics
from ._config import FORMATION_TOLERANCE
from ._context import Context
from ._coverage import COV_CUTOFFS, compute_coverage
from ._fingerprints import compute_fingerprints
from ._novelty import novelty, uniqueness
from ._properties import frechet_distance, property_subset, w1
from ._stability import Stability, stability, stability_summary
from ._structs import SampleRecord
from ._symmetry import compute_space_groups, p1_share


def _hull_note(ctx: Context) -> str:
    """Where the hull reference and the novelty reference came from."""
    records = f"{ctx.spec.dataset} {'+'.join(ctx.settings.hull_splits)}"
    reference = ctx.hull_reference()
    if reference is None:
        return (
            f"hull and novelty reference: {records} ({len(ctx.hull_records())} crystals) scored "
            f"the same way"
        )
    return (
        f"hull reference: {len(reference.compositions)} crystals of {', '.join(reference.sources)}"
        f" from a hull reference file, scored the same way; novelty reference: {records} "
        f"({len(ctx.hull_records())} crystals)"
    )


def _coverage(ctx: Context, samples: list[SampleRecord], ref: list[SampleRecord], out: Outcome):
    has = np.array([r.structure is not None for r in samples])
    with ctx.stage("fingerprints"):
        payloads = [
            CrystalArrays.from_pymatgen(r.structure) for r in samples if r.structure is not None
        ]
        g_struct, g_comp, g_ok = compute_fingerprints(
            payloads, ctx.cache, ctx.pool, label="fingerprints samples", progress=ctx.progress
        )
        r_struct, r_comp, r_ok = compute_fingerprints(
            [CrystalArrays.from_pymatgen(r.structure) for r in ref],
            ctx.cache,
            ctx.pool,
            label="fingerprints reference",
            progress=ctx.progress,
        )
    fp_ok = np.zeros(len(samples), bool)
    fp_ok[has] = g_ok
    out.columns["fingerprint_ok"] = fp_ok
    out.columns["valid"] = out.columns["valid"] & fp_ok
    if not r_ok.all():
        ctx.note(f"{int((~r_ok).sum())} reference crystals have no fingerprint and are left out")
    default = COV_CUTOFFS[ctx.spec.dataset]
    s_cut = ctx.settings.struct_cutoff or default[0]
    c_cut = ctx.settings.comp_cutoff or default[1]
    with ctx.stage("coverage"):
        cov = compute_coverage(
            g_struct[g_ok],
            g_comp[g_ok],
            r_struct[r_ok],
            r_comp[r_ok],
            n_generated=len(samples),
            struct_cutoff=s_cut,
            comp_cutoff=c_cut,
        )
    for name, values in (
        ("cov_struct_dist", cov.precision_struct),
        ("cov_comp_dist", cov.precision_comp),
    ):
        column = np.full(len(samples), np.nan)
        column[np.flatnonzero(fp_ok)] = values
        out.columns[name] = column
    out.metrics["coverage"] = {**cov.summary(), "struct_cutoff": s_cut, "comp_cutoff": c_cut}
    ctx.note(
        "COV as CDVAE computes it: every generated crystal whose fingerprint could be computed "
        "enters (valid or not); COV-P divides by all generated crystals"
    )
    out.counts["fingerprint_failures"] = int(has.sum() - g_ok.sum())


def _energy(ctx: Context, samples, subset, ref, out: Outcome) -> None:
    payloads = [CrystalArrays.from_pymatgen(samples[i].structure) for i in subset]
    with ctx.stage("chgnet_single_point"):
        e_s, fea_s = ctx.scorer.single_point(payloads, "chgnet samples", ctx.progress)
        e_r, fea_r = ctx.scorer.single_point(
            [CrystalArrays.from_pymatgen(r.structure) for r in ref],
            "chgnet reference",
            ctx.progress,
        )
    out.reference["energy"] = e_r
    props = out.metrics.setdefault("properties", {})
    props["wdist_energy"] = w1(e_s, e_r)
    props["frechet_chgnet"] = frechet_distance(fea_s, fea_r)
    props["energy_mean_samples"] = float(np.nanmean(e_s)) if len(e_s) else float("nan")
    props["energy_mean_reference"] = float(np.nanmean(e_r))
    comps = [samples[i].structure.composition for i in subset]
    stab = stability(ctx, payloads, comps, e_s)
    settings = ctx.settings
    out.metrics["stability"] = stability_summary(
        stab, settings.stable_thresholds, settings.relax_steps
    )
    ctx.note(
        f"energies: CHGNet {MODEL_NAME} (pretrained), eV/atom; d_E and the Frechet distance use "
        f"single points; relaxed = FIRE with cell filter, at most {settings.relax_steps} steps, "
        f"fmax {settings.relax_fmax} eV/A, on the first {min(settings.relax_samples, len(subset))} "
        f"samples of the property subset; {_hull_note(ctx)}; elements without an elemental "
        f"phase in it get a synthetic terminal and E_hull is undefined (NaN) where the "
        f"reference does not span the composition"
    )
    for name, values in (
        ("energy_sp", e_s),
        ("e_hull_sp", stab.e_hull_sp),
        ("energy_relaxed", stab.e_relaxed),
        ("e_hull_relaxed", stab.e_hull_relaxed),
        ("formation_energy_relaxed", stab.formation_relaxed),
        ("relax_steps", stab.relax_steps.astype(float)),
    ):
        column = np.full(len(samples), np.nan)
        column[subset] = values
        out.columns[name] = column
    if settings.formation_target is not None:
        n_valid = int(out.columns["valid"].sum())
        out.metrics["stability"] |= formation_target_share(
            stab, settings.formation_target, n_valid, len(samples)
        )


def formation_target_share(
    stab: Stability, target: float, n_valid: int, n_samples: int
) -> dict[str, float]:
    """The target and the share of all generated samples whose relaxed formation energy lies
    within `FORMATION_TOLERANCE` of it (samples without one count as missing it; a relaxed
    subset's rate is extrapolated to all valid samples, as `sun_shares`)."""
    relaxed = stab.relax_steps >= 0
    gap = np.abs(np.nan_to_num(stab.formation_relaxed[relaxed], nan=np.inf) - target)
    _, of_all = sun_shares(gap <= FORMATION_TOLERANCE, np.ones(len(gap), bool), n_valid, n_samples)
    return {
        "formation_target": target,
        f"formation_within_{FORMATION_TOLERANCE:g}_of_target_of_all": of_all,
    }


def _novelty(ctx: Context, samples, subset, out: Outcome) -> None:
    payloads = [CrystalArrays.from_pymatgen(samples[i].structure) for i in subset]
    with ctx.stage("uniqueness_novelty"):
        unique = uniqueness(payloads, ctx.pool, ctx.progress)
        reference = [CrystalArrays.from_pymatgen(r.structure) for r in ctx.hull_records()]
        novel = novelty(payloads, reference, ctx.pool, ctx.progress)
    for name, values in (("unique", unique), ("novel", novel)):
        column = np.zeros(len(samples), bool)
        column[subset] = values
        out.columns[name] = column
    beyond = out.metrics.setdefault("beyond", {})
    beyond["unique"] = float(unique.mean()) if len(unique) else float("nan")
    beyond["novel"] = float(novel.mean()) if len(novel) else float("nan")
    beyond["unique_and_novel"] = float((unique & novel).mean()) if len(unique) else float("nan")
    for kind in ("sp", "relaxed"):
        key = f"e_hull_{kind}"
        if key not in out.columns:
            continue
        e_hull = out.columns[key][subset]
        scored = np.isfinite(out.columns["energy_sp" if kind == "sp" else "energy_relaxed"][subset])
        n_valid = int(out.columns["valid"].sum())
        for t in ctx.settings.stable_thresholds:
            sun = unique & novel & scored & (np.nan_to_num(e_hull, nan=np.inf) <= t)
            of_scored, of_all = sun_shares(sun, scored, n_valid, len(samples))
            beyond[f"sun_{kind}_le_{t:g}"] = of_scored
            beyond[f"sun_{kind}_le_{t:g}_of_all"] = of_all


def sun_shares(sun: np.ndarray, scored: np.ndarray, n_valid: int, n_samples: int):
    """(share of the scored samples that are S.U.N., share of all generated samples).

    `sun` and `scored` are (m,) booleans over the property subset, a random subset of the
    `n_valid` valid samples (all of them when none was left out). The share of all samples
    counts invalid samples and samples CHGNet could not score as not S.U.N. (MatterGen's
    denominator); a subset's rate is extrapolated to all valid samples.
    """
    of_scored = float(sun.sum() / max(int(scored.sum()), 1))
    of_all = float(sun.sum() / max(len(sun), 1) * n_valid / max(n_samples, 1))
    return of_scored, of_all


def _symmetry(ctx: Context, samples, ref, out: Outcome) -> None:
    valid = np.flatnonzero(out.columns["valid"])
    with ctx.stage("symmetry"):
        spg = compute_space_groups(
            [CrystalArrays.from_pymatgen(samples[i].structure) for i in valid],
            ctx.cache,
            ctx.pool,
            label="space groups samples",
            symprec=ctx.settings.symprec,
            progress=ctx.progress,
        )
        ref_spg = compute_space_groups(
            [CrystalArrays.from_pymatgen(r.structure) for r in ref],
            ctx.cache,
            ctx.pool,
            label="space groups reference",
            symprec=ctx.settings.symprec,
            progress=ctx.progress,
        )
    column = np.zeros(len(samples), np.int64)
    column[valid] = spg
    out.columns["spacegroup"] = column
    out.reference["spacegroup"] = ref_spg
    beyond = out.metrics.setdefault("beyond", {})
    beyond["p1_share"] = p1_share(spg)
    beyond["p1_share_reference"] = p1_share(ref_spg)
    beyond["n_spacegroups"] = len(np.unique(spg[spg > 0]))


def run_dng(ctx: Context, samples: list[SampleRecord], ref: list[SampleRecord]) -> Outcome:
    """All DNG metrics of `samples` against the reference split `ref`."""
    out = Outcome()
    with ctx.stage("validity"):
        out.columns = basic_table(samples)
        ref_cols = basic_table(ref)
    out.reference = {k: ref_cols[k] for k in ("density", "n_elem")}
    _coverage(ctx, samples, ref, out)
    out.metrics["validity"] = validity_metrics(out.columns)
    settings = ctx.settings
    pool_mask = out.columns["valid"] if settings.property_valid_only else out.columns["constructed"]
    subset = property_subset(np.flatnonzero(pool_mask), settings.n_property_samples, settings.seed)
    if settings.n_property_samples is not None and len(subset) < settings.n_property_samples:
        ctx.note(
            f"only {len(subset)} samples qualify for the property subset "
            f"(protocol: {settings.n_property_samples}); all of them are used"
        )
    in_subset = np.zeros(len(samples), bool)
    in_subset[subset] = True
    out.columns["in_property_subset"] = in_subset
    out.metrics["properties"] = {
        "wdist_density": w1(out.columns["density"][subset], ref_cols["density"]),
        "wdist_num_elems": w1(out.columns["n_elem"][subset], ref_cols["n_elem"]),
    }
    if settings.symmetry:
        _symmetry(ctx, samples, ref, out)
    if settings.energy and len(subset):
        _energy(ctx, samples, subset, ref, out)
    if settings.novelty and len(subset):
        _novelty(ctx, samples, subset, out)
    out.counts.update(
        {
            "n_samples": len(samples),
            "n_reference": len(ref),
            "n_valid": int(out.columns["valid"].sum()),
            "n_property_subset": len(subset),
        }
    )
    return out
