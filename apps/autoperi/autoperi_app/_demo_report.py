"""What `autoperi demo` shows and writes: the scores table on the console and
`<out>/README.md` + `<out>/demo.json` (stage timings and figures; the loop's own report and
journal are in `<out>/loop/`, written by `loop_svc.write_report`) + `<out>/explore.html` (the
loop's selection in `autoperi explore`'s page)."""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.table import Table

_STAGES = {
    "validate": "validate the split (read, check, canonicalise)",
    "stack": "start Ray + the 6 services and wait until each answers",
    "ingest": "ingest service: the Perov-5 subset onto `main`",
    "featurise": "featurestore: tensor shards of that commit",
    "sample": "sampler service (Ray Serve): CSP samples, committed checkpoint",
    "score": "scorer service: CHGNet energy, validity, space group, novelty",
    "loop": "one active-learning round (loop service, Ray Train fine-tune via the trainer)",
    "stop": "stop the stack",
}


def _energy(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _row_cells(row: dict[str, Any]) -> list[str]:
    valid = row["structure_valid"] and row["composition_valid"]
    novel = {True: "yes", False: "no", None: "-"}[row["novel"]]
    group = f"{row['space_group_symbol']} ({row['space_group_number']})"
    return [row["formula"], str(row["num_atoms"]), _energy(row["energy_per_atom"]),
            "yes" if valid else "no", novel, group, row["error"] or ""]  # fmt: skip


_COLUMNS = ("formula", "atoms", "E (eV/atom)", "valid", "novel", "space group", "error")


def scores_table(rows: Sequence[dict[str, Any]], checkpoint_id: str) -> Table:
    """The scored samples as a rich table (rows from `loop_svc._rounds.score_row`)."""
    table = Table(title=f"sampled by checkpoint {checkpoint_id}, scored by the scorer")
    for column in _COLUMNS:
        table.add_column(column)
    for row in rows:
        table.add_row(*_row_cells(row))
    return table


def write_summary(out_dir: Path, figures: dict[str, Any], seconds: dict[str, float]) -> Path:
    """`out_dir/README.md` and `out_dir/demo.json`; returns the README's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    total = sum(seconds.values())
    record = {"seconds": seconds, "total_seconds": total, "figures": figures,
              "machine": _machine(), "finished": time.strftime("%Y-%m-%d %H:%M:%S %Z")}  # fmt: skip
    (out_dir / "demo.json").write_text(json.dumps(record, indent=1))  # stages in order
    lines = _header(record) + _stage_lines(seconds, figures) + _validation_lines(figures)
    lines += _ingest_lines(figures) + _score_lines(figures) + _loop_lines(figures)
    path = out_dir / "README.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def write_explorer(out_dir: Path, figures: dict[str, Any]) -> Path | None:
    """`out_dir/explore.html`: `autoperi explore`'s page of the loop round's selected crystals
    (from `out_dir/loop`, energies from the round's table); None when no round selected any.
    Records the page's name in `figures["explorer"]` for the README."""
    loop = out_dir / "loop"
    if not any(loop.glob("round-*.cif")):
        return None
    from autoperi_app.explore import build_page

    title = "AutoPeri demo: the active-learning round's selected crystals"
    page = build_page(loop, out_dir / "explore.html", title=title)
    figures["explorer"] = page.name
    return page


def _machine() -> dict[str, Any]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {"cpus": os.cpu_count(), "python": platform.python_version(),
            "load_average_1m": round(load[0], 2)}  # fmt: skip


def _header(record: dict[str, Any]) -> list[str]:
    machine, total = record["machine"], record["total_seconds"]
    return [
        "# AutoPeri demo",
        "",
        f"`autoperi demo` (what `make demo` runs), finished {record['finished']} in "
        f"**{total:.0f} s** ({total / 60:.1f} min) on {machine['cpus']} CPUs "
        f"(1-minute load average at the end: {machine['load_average_1m']}).",
        "",
    ]


def _stage_lines(seconds: dict[str, float], figures: dict[str, Any]) -> list[str]:
    lines = ["## Stages", "", "| stage | what | seconds |", "|---|---|---|"]
    for name, value in seconds.items():
        lines.append(f"| {name} | {_STAGES.get(name, name)} | {value:.1f} |")
    lines.append(f"| **total** | | **{sum(seconds.values()):.1f}** |")
    codes = figures.get("exit_codes")
    if codes is not None:
        lines += ["", "Service exit codes after SIGTERM: "
                  + ", ".join(f"{k} {v}" for k, v in codes.items()) + "."]  # fmt: skip
    return [*lines, ""]


def _validation_lines(figures: dict[str, Any]) -> list[str]:
    rows = figures.get("validate", {}).get("rows", [])
    if not rows:
        return []
    lines = [f"## 1. Validation of `{figures['validate']['split']}`", "",
             "| quantity | value |", "|---|---|"]  # fmt: skip
    lines += [f"| {name} | {value} |" for name, value in rows]
    return [*lines, ""]


def _ingest_lines(figures: dict[str, Any]) -> list[str]:
    ingest, feats = figures.get("ingest"), figures.get("featurise")
    if not ingest:
        return []
    lines = [
        "## 2-3. Stack, ingest, featurise",
        "",
        f"Stack storage `{figures['stack']['storage']}`, addresses "
        + ", ".join(f"{k} `{v}`" for k, v in figures["stack"].get("addresses", {}).items())
        + ".",
        "",
        f"Ingest: {ingest['sent']} crystals sent to dataset `{ingest['dataset']}` branch `main`: "
        f"{ingest['accepted']} accepted, {ingest['duplicates']} duplicates (same content hash), "
        f"{ingest['rejected']} rejected; commit `{ingest['commit'][:12]}`, "
        f"{ingest['branch_crystals']} crystals on `main`.",
    ]
    if feats:
        size = f"{feats['bytes'] / 1024:.0f} KiB"
        lines += ["", f"Featurestore: {feats['shards']} tensor shard(s), {size}, for commit "
                  f"`{ingest['commit'][:12]}`."]  # fmt: skip
    return [*lines, ""]


def _score_lines(figures: dict[str, Any]) -> list[str]:
    sample = figures.get("sample")
    if not sample:
        return []
    rows = sample["rows"]
    valid = sum(r["structure_valid"] and r["composition_valid"] for r in rows)
    novel = sum(r["novel"] is True for r in rows)
    lines = [
        "## 4. Sample and score",
        "",
        f"{len(rows)} CSP samples from the sampler service (checkpoint "
        f"`{sample['checkpoint_id']}`), scored by the scorer with novelty against `main`: "
        f"{valid}/{len(rows)} valid, {novel}/{len(rows)} novel.",
        "",
        "| " + " | ".join(_COLUMNS) + " |",
        "|" + "---|" * len(_COLUMNS),
    ]
    lines += ["| " + " | ".join(_row_cells(r)) + " |" for r in rows]
    return [*lines, ""]


def _loop_lines(figures: dict[str, Any]) -> list[str]:
    loop = figures.get("loop")
    if not loop:
        return []
    rnd = loop["round"]
    before, after = rnd.get("metric_before"), rnd.get("metric_after")
    metric = "-" if before is None else f"{before:.4f} -> {after:.4f}"
    lines = [
        "## 5. One active-learning round",
        "",
        f"Targets {', '.join(loop['targets'])}: {rnd.get('num_generated', 0)} generated, "
        f"{rnd.get('num_valid', 0)} valid, {rnd.get('num_novel', 0)} novel, "
        f"{rnd.get('num_selected', 0)} selected and ingested on `{rnd.get('branch', '')}` "
        f"(commit `{rnd.get('ingest_commit_id', '')[:12]}`); fine-tuned by run "
        f"`{rnd.get('training_run_id', '')}` ({rnd.get('training_step', 0)} steps, loss "
        f"{_energy(rnd.get('training_loss'))}); held-out match rate {metric}.",
        "",
        f"Decision: **{rnd.get('decision', '')}**.",
        "",
        "The round's report: [loop/README.md](loop/README.md), [loop/round-1.md](loop/round-1.md)"
        " (selected structures, PNGs); every stage, id and metric: "
        "[loop/journal.json](loop/journal.json).",
        "",
    ]
    page = figures.get("explorer")
    if page:
        what = "table, 3D view, energy against composition; one page that works offline"
        lines += [f"Explore the selected crystals ({what}): [{page}]({page}).", ""]
    lines += [f"![{p.stem}](loop/{p.name})" for p in _pngs(figures)]
    return lines


def _pngs(figures: dict[str, Any]) -> list[Path]:
    out = Path(figures.get("out_dir", "")) / "loop"
    return sorted(out.glob("round-1_*.png")) if out.is_dir() else []
