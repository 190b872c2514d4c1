"""Crystal structure prediction metrics: match rate and RMSE for k = 1 and k = n (SCIENCE 5.4)."""

from __future__ import annotations

import numpy as np
from autoperi_data import CrystalArrays

from ._basic import Outcome, basic_table, validity_metrics
from ._context import Context
from ._io import EvalInputError
from ._match import best_per_gt, compute_rms, match_metrics
from ._polymorph import (
    cross_pairs,
    polymorph_metrics,
    residual_metrics,
    residual_references,
)
from ._structs import SampleRecord
from ._symmetry import compute_space_groups, p1_share


def assign_ground_truth(samples: list[SampleRecord], ref: list[SampleRecord]) -> np.ndarray:
    """(n_samples,) position in `ref` of each sample's ground truth, -1 when it is not there.

    `gt_index` is a row of the split file, `gt_id` a material_id; with neither on any sample,
    sample i belongs to reference position i mod len(ref) (DiffCSP's k passes over the test set).
    """
    by_row = {r.index: j for j, r in enumerate(ref)}
    by_id = {r.id: j for j, r in enumerate(ref)}
    if all(s.gt_index is None and s.gt_id is None for s in samples):
        if len(samples) % len(ref):
            raise EvalInputError(
                f"{len(samples)} samples carry no ground truth (gt_index / gt_id) and are not a "
                f"whole number of passes over the {len(ref)} reference crystals"
            )
        return np.arange(len(samples)) % len(ref)
    out = np.full(len(samples), -1, dtype=np.int64)
    for i, s in enumerate(samples):
        if s.gt_index is not None:
            out[i] = by_row.get(s.gt_index, -1)
        elif s.gt_id is not None:
            out[i] = by_id.get(s.gt_id, -1)
    return out


def candidate_rank(gt_of: np.ndarray) -> np.ndarray:
    """(n,) order of each sample among the samples of its ground truth (input order)."""
    rank = np.zeros(len(gt_of), dtype=np.int64)
    seen: dict[int, int] = {}
    for i, g in enumerate(gt_of):
        rank[i] = seen.get(int(g), 0)
        seen[int(g)] = rank[i] + 1
    return rank


def run_csp(ctx: Context, samples: list[SampleRecord], ref: list[SampleRecord]) -> Outcome:
    """Match rates of `samples` against their ground truths in `ref`."""
    out = Outcome()
    gt_of = assign_ground_truth(samples, ref)
    rank = candidate_rank(np.where(gt_of >= 0, gt_of, -1))
    use = (gt_of >= 0) & (rank < ctx.settings.k)
    if (gt_of < 0).any():
        ctx.note(f"{int((gt_of < 0).sum())} samples name a ground truth outside the reference")
    beyond_k = int(((gt_of >= 0) & (rank >= ctx.settings.k)).sum())
    if beyond_k:
        ctx.note(f"{beyond_k} samples beyond k = {ctx.settings.k} candidates are ignored")
    with ctx.stage("validity"):
        out.columns = basic_table(samples)
        ref_cols = basic_table(ref)
    out.reference = {k: ref_cols[k] for k in ("density", "n_elem")}
    same = np.array(
        [
            g >= 0 and out.columns["formula"][i] == ref_cols["formula"][g]
            for i, g in enumerate(gt_of)
        ]
    )
    idx = np.flatnonzero(use & out.columns["constructed"])
    with ctx.stage("match"):
        pairs = [
            (
                CrystalArrays.from_pymatgen(samples[i].structure),
                CrystalArrays.from_pymatgen(ref[gt_of[i]].structure),
            )
            for i in idx
        ]
        rms = np.full(len(samples), np.nan)
        rms[idx] = compute_rms(pairs, ctx.pool, ctx.progress)
    sel = np.flatnonzero(use)
    metrics = match_metrics(
        gt_of[sel], rank[sel], rms[sel], out.columns["valid"][sel], ref_cols["valid"], len(ref)
    )
    out.metrics["match"] = metrics
    matched = np.flatnonzero(use & (rank == 0) & np.isfinite(rms))
    out.metrics["match_rows"] = {"k1_ungated": sorted(int(ref[gt_of[i]].index) for i in matched)}
    with ctx.stage("polymorphs"):
        out.metrics["polymorph"] = _polymorphs(ctx, samples, ref, gt_of, use, rms, out, ref_cols)
    if ctx.settings.residual_of is not None:
        out.metrics["residual"] = _residual(ctx, ref, gt_of, use & (rank == 0), rms, out, ref_cols)
    out.metrics["validity"] = validity_metrics(out.columns)
    out.metrics["validity_reference"] = validity_metrics(ref_cols)
    out.columns.update({"gt_position": gt_of, "rank": rank, "rms": rms, "same_formula": same})
    if ctx.settings.symmetry:
        first = np.flatnonzero(use & (rank == 0) & out.columns["valid"])
        with ctx.stage("symmetry"):
            spg = compute_space_groups(
                [CrystalArrays.from_pymatgen(samples[i].structure) for i in first],
                ctx.cache,
                ctx.pool,
                label="space groups samples",
                symprec=ctx.settings.symprec,
                progress=ctx.progress,
            )
            ref_spg = compute_space_groups(
                [CrystalArrays.from_pymatgen(ref[j].structure) for j in gt_of[first]],
                ctx.cache,
                ctx.pool,
                label="space groups references",
                symprec=ctx.settings.symprec,
                progress=ctx.progress,
            )
        column = np.zeros(len(samples), np.int64)
        column[first] = spg
        out.columns["spacegroup"] = column
        out.columns["spacegroup_reference"] = np.zeros(len(samples), np.int64)
        out.columns["spacegroup_reference"][first] = ref_spg
        out.metrics["beyond"] = {
            "p1_share_k1": p1_share(spg),
            "same_space_group_k1": float(np.mean(np.asarray(spg) == np.asarray(ref_spg)))
            if len(first)
            else float("nan"),
        }
    out.counts.update(
        {
            "n_samples": len(samples),
            "n_reference": len(ref),
            "n_used": int(use.sum()),
            "n_gt_with_samples": len(np.unique(gt_of[use])),
            "k": int(rank[use].max()) + 1 if use.any() else 0,
            "composition_mismatch": int((use & ~same).sum()),
            "n_valid": int(out.columns["valid"].sum()),
        }
    )
    return out


def _polymorphs(ctx, samples, ref, gt_of, use, rms, out, ref_cols) -> dict[str, float]:
    """METRe and cRMSE: valid candidates (rank < k) against every reference of their formula."""
    candidates = use & out.columns["valid"]
    cross = cross_pairs(out.columns["formula"], ref_cols["formula"], candidates, gt_of)
    cross_rms = compute_rms(
        [
            (
                CrystalArrays.from_pymatgen(samples[i].structure),
                CrystalArrays.from_pymatgen(ref[j].structure),
            )
            for i, j in cross
        ],
        ctx.pool,
        ctx.progress,
    )
    own = np.flatnonzero(candidates)
    ref_of = np.concatenate([gt_of[own], np.array([j for _, j in cross], dtype=np.int64)])
    values = np.concatenate([rms[own], cross_rms])
    return polymorph_metrics(best_per_gt(ref_of, values, len(ref)))


def _residual(ctx, ref, gt_of, first, rms, out, ref_cols) -> dict[str, float]:
    """Match rates of the k = 1 candidates (`first`, (n_samples,) bool) on the references that
    the report `settings.residual_of` did not match."""
    idx = np.flatnonzero(first)
    valid = out.columns["valid"][idx] & ref_cols["valid"][gt_of[idx]]
    first_rms, gated_rms = np.full(len(ref), np.nan), np.full(len(ref), np.nan)
    first_rms[gt_of[idx]] = rms[idx]
    gated_rms[gt_of[idx]] = np.where(valid, rms[idx], np.nan)
    rows = [r.index for r in ref]
    residual = residual_references(ctx.settings.residual_of, rows, str(ctx.spec))
    return residual_metrics(residual, first_rms, gated_rms)
