"""The evaluation report: a JSON file with every figure, a per-structure CSV, a markdown table."""

from __future__ import annotations

import csv
import json
import math
import os
import platform
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

_PACKAGES = ("numpy", "scipy", "pymatgen", "matminer", "smact", "spglib", "chgnet", "torch", "ase")
_CSV_FIRST = ("formula", "n_atoms", "constructed", "struct_valid", "comp_valid", "valid")


@dataclass
class EvalReport:
    """Everything one evaluation produced. `columns` hold one value per sample (n,)."""

    name: str
    task: str
    reference: str
    source: str
    metrics: dict[str, Any]
    counts: dict[str, int]
    settings: dict[str, Any]
    timings: dict[str, float]
    wall_time_s: float
    machine: dict[str, Any]
    cache: dict[str, dict[str, int]]
    notes: list[str]
    ids: list[str]
    columns: dict[str, np.ndarray] = field(repr=False)
    paths: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready content (NaN as null), without the per-structure columns."""
        body = {
            "name": self.name,
            "task": self.task,
            "reference": self.reference,
            "samples": self.source,
            "metrics": self.metrics,
            "counts": self.counts,
            "settings": self.settings,
            "timings_s": self.timings,
            "wall_time_s": self.wall_time_s,
            "machine": self.machine,
            "cache": self.cache,
            "notes": self.notes,
            "files": self.paths,
        }
        return _clean(body)


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def machine_info(load_start: tuple[float, float, float]) -> dict[str, Any]:
    """Host, CPU count, load averages at start and end, memory, package versions."""
    try:
        pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        memory_gib = round(pages * page_size / 2**30, 1)
    except (ValueError, OSError):
        memory_gib = None
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "host": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "memory_gib": memory_gib,
        "loadavg_start": list(load_start),
        "loadavg_end": list(os.getloadavg()),
        "versions": versions,
    }


def write_json(report: EvalReport, path: Path) -> None:
    """Write the JSON report."""
    path.write_text(json.dumps(report.to_dict(), indent=1, sort_keys=False) + "\n")


def write_csv(report: EvalReport, path: Path) -> None:
    """One row per sample: identity, validity, properties, metric contributions."""
    names = [n for n in _CSV_FIRST if n in report.columns]
    names += sorted(n for n in report.columns if n not in names)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["index", "id", *names])
        for i, ident in enumerate(report.ids):
            writer.writerow([i, ident, *(_cell(report.columns[n][i]) for n in names)])


def _cell(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return "" if not math.isfinite(value) else f"{value:.6g}"
    return value


def _pct(x: Any) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{100 * x:.2f}"


def _num(x: Any, digits: int = 4) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def markdown(report: EvalReport) -> str:
    """The report as markdown tables (percentages for shares)."""
    m = report.metrics
    lines = [
        f"# Evaluation `{report.name}`",
        "",
        f"- task: {report.task}; reference: `{report.reference}`; samples: `{report.source}`",
        f"- counts: {', '.join(f'{k} {v}' for k, v in report.counts.items())}",
        f"- wall time: {report.wall_time_s:.1f} s on {report.machine.get('host')} "
        f"({report.machine.get('cpus')} cpus, load {report.machine.get('loadavg_start')})",
        "",
    ]
    v = m.get("validity", {})
    if report.task == "dng":
        c, p = m.get("coverage", {}), m.get("properties", {})
        lines += [
            "| struct valid | comp valid | valid | COV-R | COV-P | d_rho | d_E | d_elem | FD |",
            "|---|---|---|---|---|---|---|---|---|",
            f"| {_pct(v.get('struct_valid'))} | {_pct(v.get('comp_valid'))} "
            f"| {_pct(v.get('valid'))} "
            f"| {_pct(c.get('cov_recall'))} | {_pct(c.get('cov_precision'))} "
            f"| {_num(p.get('wdist_density'))} | {_num(p.get('wdist_energy'))} "
            f"| {_num(p.get('wdist_num_elems'))} | {_num(p.get('frechet_chgnet'))} |",
            "",
        ]
    else:
        lines += ["| variant | match rate % | RMSE | matched |", "|---|---|---|---|"]
        for name, row in m.get("match", {}).items():
            lines.append(
                f"| {name} | {_pct(row['match_rate'])} | {_num(row['rmse'])} | {row['n_matched']} |"
            )
        lines.append("")
    for section in ("polymorph", "residual", "stability", "beyond"):
        if m.get(section):
            lines += [f"**{section}**", "", "| metric | value |", "|---|---|"]
            lines += [
                f"| {k} | {_num(x) if isinstance(x, float) else x} |" for k, x in m[section].items()
            ]
            lines.append("")
    lines += ["**timings (s)**", "", "| stage | s |", "|---|---|"]
    lines += [f"| {k} | {t:.1f} |" for k, t in report.timings.items()]
    if report.notes:
        lines += ["", "**notes**", "", *[f"- {n}" for n in report.notes]]
    return "\n".join(lines) + "\n"
