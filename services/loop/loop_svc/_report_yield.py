"""The S.U.N. yield part of a loop's report (loops with the sun_yield objective): per round the
yields of the checkpoint before and after fine-tuning with the bootstrap interval of their
difference and the CSP guard, and the fine-tuned checkpoint's S.U.N. crystals: a table, and their
relaxed structures in `round-<k>_sun.cif` next to the report. Yields count S.U.N. crystals per
1,000 samples drawn (every sample in the denominator, scored or not).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loop_svc._yield import from_bits
from loop_svc._yield_eval import read_scored

SUMMARY_HEADER = " | yield before | yield after | difference CI | S.U.N."


def evaluation_line(spec: dict[str, Any]) -> str:
    """What decides the merge, in one sentence."""
    e, space = spec["evaluation"], spec.get("chemical_space")
    task = f"de novo on {_space_name(space)}" if space else "CSP of the targets"
    return (
        f"Evaluation: S.U.N. yield (stable: relaxed E_hull <= {e['stable_e_above_hull']:g} "
        f"eV/atom against the scorer's hull; unique; novel against the seed dataset commit) "
        f"per 1000 of {e['yield_samples']} fresh samples ({task}, the same seed for every "
        f"checkpoint); merge when the {e['confidence']:.0%} percentile-bootstrap interval "
        f"({e['bootstrap_resamples']} paired resamples) of after - before lies above 0 and the "
        f"held-out CSP match rate (first {e['size']} crystals of `{e['dataset']}`) drops by at "
        f"most {e['max_csp_drop']:g} (N/A for de novo-only checkpoints)."
    )


def _space_name(space: dict[str, Any]) -> str:
    elements = "-".join(sorted(space["elements"])) or "any elements"
    required = f", each sample with {', '.join(space['required'])}" if space["required"] else ""
    return f"{elements}{required}"


def summary_cells(rnd: dict[str, Any]) -> str:
    """The round's four yield cells of the summary table (`SUMMARY_HEADER`), each after ' | '."""
    if rnd.get("yield_before") is None:
        return " | " * 4
    return (
        f" | {rnd['yield_before']:.1f} | {rnd['yield_after']:.1f} | "
        f"[{rnd['yield_diff_low']:+.1f}, {rnd['yield_diff_high']:+.1f}] | {rnd['num_sun']}"
    )


def yield_section(journal: dict[str, Any], rnd: dict[str, Any], loop_dir: Path, out_dir: Path):
    """Markdown lines of the round's yields and S.U.N. crystals; writes `round-<k>_sun.cif`."""
    record = journal.get("yields", {}).get(rnd.get("checkpoint_id", ""))
    if rnd.get("yield_before") is None or record is None:
        return ["", "S.U.N. yield: not evaluated (no fine-tuned checkpoint this round)."]
    confidence = journal["spec"]["evaluation"]["confidence"]
    lines = [
        "",
        "## S.U.N. yield",
        "",
        f"- before fine-tuning: {rnd['yield_before']:.1f} per 1000 "
        f"({rnd['num_sun_before']} of {record['n']} samples)",
        f"- after: {rnd['yield_after']:.1f} per 1000 ({rnd['num_sun']} of {record['n']} samples;"
        f" {record['num_scored']} scored, {record['num_unrelaxed']} without a relaxed cell)",
        f"- difference after - before: {confidence:.0%} CI [{rnd['yield_diff_low']:+.1f}, "
        f"{rnd['yield_diff_high']:+.1f}]",
        f"- stable {_count(record, 'stable')}, unique {_count(record, 'unique')}, novel "
        f"{_count(record, 'novel')} of {record['n']} (after)",
    ]
    return lines + _sun_table(record, loop_dir, out_dir / f"round-{rnd['index']}_sun.cif")


def _count(record: dict[str, Any], name: str) -> int:
    return int(from_bits(record[name]).sum())


def _sun_table(record: dict[str, Any], loop_dir: Path, cif: Path) -> list[str]:
    """The S.U.N. crystals (sample index, formula, E_hull, content hash) and their CIF."""
    from loop_svc._report import _cif

    indices = [int(i) for i in from_bits(record["sun"]).nonzero()[0]]
    if not indices:
        return ["", "No S.U.N. crystal among the fine-tuned checkpoint's samples."]
    crystals = read_scored(loop_dir, record)
    chosen = [(i, crystals[i]) for i in indices]
    _cif(chosen, cif, label="sample")
    lines = ["", "| sample | formula | E_hull (eV/atom) | content hash |", "|---|---|---|---|"]
    for i, crystal in chosen:
        e_hull = record["e_above_hull"][i]
        lines.append(
            f"| {i} | {crystal.formula} | {e_hull:.4f} | `{crystal.content_hash()[:16]}` |"
        )
    return [*lines, "", f"S.U.N. structures (relaxed): [{cif.name}]({cif.name})"]
