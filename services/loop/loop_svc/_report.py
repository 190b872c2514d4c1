"""Per-round reports of a loop: markdown tables and PNG figures (energy and E_hull histograms,
validity and novelty counts, space groups, pictures of the best new structures), a summary page
over all rounds, and the journal as JSON.

Files under `out_dir`: `README.md` (summary), `journal.json`, `round-<k>.md`,
`round-<k>_<figure>.png`, `round-<k>.cif` (the selected structures), `round-<k>.json` (their
scores: candidate index, formula, energy per atom, E_hull, space group, content hash) and, for the
S.U.N. yield objective, `round-<k>_sun.cif` (the fine-tuned checkpoint's S.U.N. crystals; see
`_report_yield`).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from xtal import Crystal

from loop_svc._report_yield import SUMMARY_HEADER, evaluation_line, summary_cells, yield_section

_HISTOGRAMS = (("energy_per_atom", "CHGNet energy (eV/atom)"), ("e_above_hull", "E_hull (eV/atom)"))
_COUNTS = ("num_generated", "num_scored", "num_valid", "num_novel", "num_selected")


def write_report(journal: dict[str, Any], loop_dir: Path, out_dir: Path) -> Path:
    """Write the whole report of a loop (its folder holds the rounds' candidates and scores)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "journal.json").write_text(json.dumps(journal, indent=1, sort_keys=True))
    for rnd in journal["rounds"]:
        if "scoring" in rnd["done"]:
            round_report(journal, rnd, loop_dir / f"round-{rnd['index']}", out_dir)
    summary = out_dir / "README.md"
    summary.write_text(summary_markdown(journal))
    return summary


def summary_markdown(journal: dict[str, Any]) -> str:
    """The loop's table: one row per round (branch, commits, run, counts, metrics, yields with
    their interval for the yield objective, decision)."""
    spec = journal["spec"]
    sun = spec["evaluation"].get("objective") == "sun_yield"
    lines = [
        f"# Loop `{journal['loop_id']}` ({spec['name']})",
        "",
        f"State: **{journal['state']}**. Dataset `{spec['dataset']}` branch `{spec['branch']}`; "
        f"{spec['num_rounds']} rounds; base checkpoint `{journal['base_checkpoint_id'][:12]}`; "
        f"current checkpoint `{journal['current_checkpoint_id'][:12]}`.",
        evaluation_line(spec) if sun else _metric_line(spec["evaluation"]),
        "",
        "| round | branch | ingest commit | run | checkpoint | generated | scored | valid | novel"
        f" | selected | before | after{SUMMARY_HEADER if sun else ''} | decision |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|" + "---|" * (1 + 4 * sun),
    ]
    for rnd in journal["rounds"]:
        counts = " | ".join(str(rnd.get(k, "")) for k in _COUNTS)
        lines.append(
            f"| [{rnd['index']}](round-{rnd['index']}.md) | `{rnd.get('branch', '')}` | "
            f"`{rnd.get('ingest_commit_id', '')[:12]}` | `{rnd.get('training_run_id', '')}` | "
            f"`{rnd.get('checkpoint_id', '')[:12]}` | {counts} | "
            f"{_num(rnd.get('metric_before'))} | {_num(rnd.get('metric_after'))}"
            f"{summary_cells(rnd) if sun else ''} | {rnd.get('decision', rnd['stage'])} |"
        )
    if journal.get("error"):
        lines += ["", f"Error: {journal['error']}"]
    return "\n".join(lines) + "\n"


def _metric_line(evaluation: dict[str, Any]) -> str:
    return (
        f"Evaluation: {evaluation['metric']} (k = 1, CDVAE gating) on the first "
        f"{evaluation['size']} crystals of held-out dataset `{evaluation['dataset']}` at "
        f"`{evaluation['ref'][:12]}`; merge when it improves by >= "
        f"{evaluation['min_improvement']}."
    )


def round_report(journal: dict, rnd: dict, files: Path, out_dir: Path) -> Path:
    """`round-<k>.md` and its figures from the round's scores and candidates."""
    from loop_svc._candidates import FILE_NAME, Candidates

    rows = json.loads((files / "scores.json").read_text())
    crystals = Candidates.read(files / FILE_NAME)
    selected = rnd.get("selected", [])
    name = f"round-{rnd['index']}"
    figures = figures_of(rows, crystals, selected, out_dir, name)
    page = round_markdown(rnd, rows, selected, figures)
    if journal["spec"]["evaluation"].get("objective") == "sun_yield":
        page += "\n".join(yield_section(journal, rnd, files.parent, out_dir)) + "\n"
    path = out_dir / f"{name}.md"
    path.write_text(page)
    selection = [{"index": i, **{k: rows[i][k] for k in SELECTED_FIELDS}} for i in selected]
    (out_dir / f"{name}.json").write_text(json.dumps(selection, indent=1))
    return path


SELECTED_FIELDS = ("formula", "energy_per_atom", "e_above_hull", "space_group_number",
                   "space_group_symbol", "content_hash")  # fmt: skip


def round_markdown(rnd: dict, rows: list[dict], selected: Sequence[int], figures: dict) -> str:
    """The round's counts, decision, the selected structures' table and the figures."""
    decision = rnd.get("decision", rnd["stage"])
    lines = [f"# Round {rnd['index']}", "", f"Decision: **{decision}**", ""]
    lines += [f"- {k.removeprefix('num_')}: {rnd.get(k, '')}" for k in _COUNTS]
    lines += [
        f"- branch `{rnd.get('branch', '')}`, ingest commit `{rnd.get('ingest_commit_id', '')}`",
        f"- training run `{rnd.get('training_run_id', '')}`, checkpoint "
        f"`{rnd.get('checkpoint_id', '')}`",
        f"- metric before {_num(rnd.get('metric_before'))}, after {_num(rnd.get('metric_after'))}",
        f"- survivors after each filter: {rnd.get('selection_counts', {})}",
        f"- dropped by: {rnd.get('dropped', {})}",
        *[f"- note: {n}" for n in rnd.get("selection_notes", [])],
        "",
        "| # | formula | E (eV/atom) | E - lowest of formula | E_hull (eV/atom) | space group"
        " | content hash |",
        "|---|---|---|---|---|---|---|",
    ]
    lowest = _lowest_per_formula(rows)
    for i in selected:
        r, energy = rows[i], rows[i]["energy_per_atom"]
        above = None if energy is None else energy - lowest[r["formula"]]
        lines.append(
            f"| {i} | {r['formula']} | {_num(energy)} | {_num(above)} | "
            f"{_num(r['e_above_hull'])} | {r['space_group_symbol']} ({r['space_group_number']})"
            f" | `{r['content_hash'][:16]}` |"
        )
    lines.append("")
    lines += [f"![{k}]({v})" for k, v in figures.items() if v.endswith(".png")]
    if "selected_cif" in figures:
        cif = figures["selected_cif"]
        lines += ["", f"Selected structures: [{cif}]({cif})"]
    return "\n".join(lines) + "\n"


def _lowest_per_formula(rows: list[dict]) -> dict[str, float]:
    lowest: dict[str, float] = {}
    for r in rows:
        if r["energy_per_atom"] is not None:
            lowest[r["formula"]] = min(r["energy_per_atom"], lowest.get(r["formula"], np.inf))
    return lowest


def figures_of(
    rows: list[dict], crystals: Sequence[Crystal], selected: Sequence[int], out_dir: Path, name: str
) -> dict[str, str]:
    """The round's PNGs and the selected structures' CIF; {figure: file name}."""
    chosen = set(selected)
    files = {}
    for key, label in _HISTOGRAMS:
        values = np.array([r[key] for r in rows if r[key] is not None], dtype=float)
        if len(values):
            kept = [rows[i][key] for i in selected if rows[i][key] is not None]
            kept = np.array(kept, dtype=float)
            files[key] = _histogram(values, kept, label, out_dir / f"{name}_{key}.png")
    files["counts"] = _counts(rows, len(chosen), out_dir / f"{name}_counts.png")
    groups = Counter(r["space_group_symbol"] or "?" for r in rows if not r["error"])
    if groups:
        files["space_groups"] = _space_groups(groups, out_dir / f"{name}_space_groups.png")
    best = _structures([(i, crystals[i]) for i in selected], out_dir / f"{name}_best.png")
    if best is not None:
        files["best"] = best
    if selected:
        files["selected_cif"] = _cif([(i, crystals[i]) for i in selected], out_dir / f"{name}.cif")
    return {k: Path(v).name for k, v in files.items()}


def _figure(width: float = 5.0, height: float = 3.5):
    from autoperi_eval import figure

    return figure(width, height)


def _histogram(values: np.ndarray, kept: np.ndarray, label: str, path: Path) -> Path:
    fig, ax = _figure()
    bins = np.histogram_bin_edges(values, bins=min(30, max(5, len(values) // 2)))
    ax.hist(values, bins=bins, alpha=0.5, label=f"scored (n={len(values)})")
    if len(kept):
        ax.hist(kept, bins=bins, alpha=0.8, label=f"selected (n={len(kept)})")
    ax.set_xlabel(label)
    ax.set_ylabel("candidates")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    return path


def _counts(rows: list[dict], num_selected: int, path: Path) -> Path:
    fig, ax = _figure()
    values = {
        "generated": len(rows),
        "scored": sum(not r["error"] for r in rows),
        "valid": sum(r["structure_valid"] and r["composition_valid"] for r in rows),
        "novel": sum(r["novel"] is True for r in rows),
        "selected": num_selected,
    }
    ax.bar(list(values), list(values.values()))
    ax.set_ylabel("candidates")
    fig.tight_layout()
    fig.savefig(path)
    return path


def _space_groups(groups: Counter, path: Path) -> Path:
    fig, ax = _figure(6.0)
    names, counts = zip(*groups.most_common(20), strict=True)
    ax.bar(range(len(names)), counts)
    ax.set_xticks(range(len(names)), names, rotation=60, fontsize=7)
    ax.set_ylabel("scored candidates")
    fig.tight_layout()
    fig.savefig(path)
    return path


def _structures(chosen: list[tuple[int, Crystal]], path: Path) -> Path | None:
    """Pictures of up to six (candidate index, crystal), most stable first (autoperi_eval's
    structure figure)."""
    from autoperi_eval import SampleRecord, structure_pictures

    records = [
        SampleRecord(i, f"#{i}", c.to_pymatgen(), np.asarray(c.atomic_numbers))
        for i, c in chosen[:6]
    ]
    return structure_pictures(records, path) if records else None


def _cif(chosen: list[tuple[int, Crystal]], path: Path, label: str = "candidate") -> Path:
    """Structures as one CIF file, a block per (index, crystal) named `data_<label><index>_`."""
    from pymatgen.io.cif import CifWriter

    blocks = []
    for i, crystal in chosen:
        text = str(CifWriter(crystal.to_pymatgen()))
        blocks.append(text.replace("data_", f"data_{label}{i}_", 1))
    path.write_text("\n".join(blocks))
    return path


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"
