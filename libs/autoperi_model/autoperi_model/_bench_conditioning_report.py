"""The report of `bench_conditioning`: its result as JSON and a markdown table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PARTS = ("chemical_system", "space_group", "atoms", "all")


def write_conditioning(result: dict[str, Any], out: Path, name: str) -> Path:
    """Write `result` as `out/name.json` and `out/name.md`; the markdown file's path."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    path = out / f"{name}.md"
    rows = "\n".join(_row(r, result["checks"]) for r in result["conditions"])
    path.write_text(_head(result) + rows + "\n")
    return path


def _head(result: dict[str, Any]) -> str:
    machine = result["machine"]
    checks = " | ".join(f"{c} (%)" for c in result["checks"])
    columns = "| condition | generated | failed | chemical system | space group | atoms | all | "
    columns += f"{checks} | distinct compositions | CPU s |\n"
    rule = "|---" * (9 + len(result["checks"])) + "|\n"
    return (
        f"# Conditioned de novo generation: {result['checkpoint']} ({result['kind']})\n\n"
        f"{result['samples_per_condition']} samples per condition, seed {result['seed']}, "
        f"{result['steps']} steps; space groups by spglib at symprec {result['symprec']}. "
        "Condition shares in %: conditioned samples / unconditional samples honouring it. "
        "Check shares: conditioned samples / the unconditional samples that honour the "
        "condition (how many, in brackets). "
        f"CPU time {result['cpu_seconds']} s on one thread (load average "
        f"{machine['load_average_1m']:.1f} on {machine['cpu_count']} cores).\n\n" + columns + rule
    )


def _row(row: dict[str, Any], checks: list[str]) -> str:
    if "refused" in row:
        return f"| {row['condition']} | refused: {row['refused']} |" + " |" * (7 + len(checks))
    shares, free = row["shares"], row.get("unconditional_shares", {})
    parts = " | ".join(_pair(shares.get(p), free.get(p), p in free) for p in PARTS)
    free_checks, k = row.get("unconditional_checks"), row.get("unconditional_honouring")
    values = " | ".join(
        _pair(row["checks"][c], (free_checks or {}).get(c), free_checks is not None, k)
        for c in checks
    )
    return (
        f"| {row['condition']} | {row['generated']} | {row['failed']} | {parts} | {values} "
        f"| {row['distinct_compositions']} | {row['cpu_seconds']} |"
    )


def _pair(mine: float | None, free: float | None, compare: bool, k: int | None = None) -> str:
    """ "mine / free (k)" where there is an unconditional value to compare with (None: no
    unconditional sample honours the condition)."""
    if mine is None:
        return ""
    if not compare:
        return f"{mine:.1f}"
    text = "n/a" if free is None else f"{free:.1f}"
    return f"{mine:.1f} / {text}" + (f" ({k})" if k is not None else "")
