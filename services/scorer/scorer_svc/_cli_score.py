"""The bodies of `autoperi score` and `autoperi screen`: read files, score in this process or on
a server, report (or keep the best of each group of candidates, `_screen`)."""

import json
import math
from pathlib import Path

import numpy as np
import typer
from rich.console import Console
from rich.table import Table
from xtal import Crystal

from scorer_svc._model import Reference, ScoreOptions, Scores
from scorer_svc._screen import ScreenPlan, write_screened

console = Console()


def run_score(
    files: list[Path],
    address: str | None,
    options: ScoreOptions,
    storage_uri: str,
    json_out: Path | None,
) -> None:
    """Score the crystals of `files`; exit code 2 for unreadable input or a refused request."""
    crystals = _read(files)
    results = _remote(address, crystals, options) if address else _local(
        crystals, options, storage_uri=storage_uri)  # fmt: skip
    _table(crystals, results, options.relax, options.novelty_reference is not None)
    if json_out is not None:
        rows = [_row(c, r) for c, r in zip(crystals, results, strict=True)]
        json_out.write_text(json.dumps({"results": rows}, indent=1) + "\n")
        console.print(f"{len(rows)} results -> {json_out}")


def run_screen(
    files: list[Path], address: str | None, plan: ScreenPlan, hull: Path | None, out: Path
) -> None:
    """Keep the best of each `plan.best_of` candidates of `files` (`_screen`) in `out`; exit
    code 2 for unreadable input, a refused request or a scorer without the hull the key needs."""
    crystals = _read(files)
    options = ScoreOptions(symmetry="none")
    if address:
        results = _remote(address, crystals, options)
    else:
        results = _local(crystals, options, **({"hull_entries": str(hull)} if hull else {}))
    kept = plan.choose(results)
    if not kept:
        console.print(
            f"[red]no candidate has a {plan.key_name}: the scorer needs a hull reference "
            "(--hull FILE, or a server started with one) and valid candidates[/red]"
        )
        raise typer.Exit(2)
    summary = write_screened(crystals, results, plan, kept, out)
    console.print(
        f"kept {summary['kept']} of {summary['candidates']} candidates (best of "
        f"{plan.best_of} by {plan.key_name}; {summary['groups_without_candidate']} groups "
        f"without a scorable candidate) -> {out}"
    )


def _read(files: list[Path]) -> list[Crystal]:
    from scorer_svc._inputs import read_inputs

    try:
        crystals, problems = read_inputs(files)
    except (OSError, ValueError) as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    for line in problems:
        console.print(f"[yellow]skipped[/yellow] {line}")
    if not crystals:
        console.print("[red]no crystals to score[/red]")
        raise typer.Exit(2)
    return crystals


def parse_reference(text: str) -> Reference:
    """The Reference of `--novelty NAME[@REF]`."""
    dataset, _, ref = text.partition("@")
    return Reference(dataset, ref)


def _remote(address: str, crystals: list[Crystal], options: ScoreOptions) -> list[Scores]:
    import grpc

    from scorer_svc.client import score

    try:
        return score(address, crystals, options)
    except grpc.RpcError as exc:
        console.print(f"[red]{exc.code().name}: {exc.details()}[/red]")
        raise typer.Exit(2) from None


def _local(crystals: list[Crystal], options: ScoreOptions, **changes: str) -> list[Scores]:
    """Scores from workers in this process, under the default settings with `changes` (e.g.
    storage_uri, hull_entries)."""
    from svc_kit import ServiceError

    from scorer_svc._server import score_in_process
    from scorer_svc._settings import ScorerSettings

    settings = ScorerSettings(warm_start=False, **changes)
    try:
        return score_in_process(crystals, options, settings)
    except ServiceError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


def _table(crystals: list[Crystal], results: list[Scores], relax: bool, novelty: bool) -> None:
    table = Table("#", "id", "formula", "E (eV/atom)", "valid", "space group")
    for name in (["steps"] if relax else []) + (["novel"] if novelty else []):
        table.add_column(name)
    for crystal, r in zip(crystals, results, strict=True):
        if r.error is not None:
            table.add_row(str(r.index), crystal.id, crystal.formula, f"[red]{r.error.code}[/red]",
                          "", r.error.message[:60])  # fmt: skip
            continue
        valid = f"{'S' if r.structure_valid else '-'}{'C' if r.composition_valid else '-'}"
        cells = [str(r.index), crystal.id, crystal.formula, f"{r.energy_per_atom:.4f}", valid,
                 f"{r.space_group_symbol} ({r.space_group_number})"]  # fmt: skip
        cells += [str(r.relax_steps)] if relax else []
        cells += [str(r.novel)] if novelty else []
        table.add_row(*cells)
    console.print(table)


def _row(crystal: Crystal, r: Scores) -> dict:
    row = {"index": r.index, "id": crystal.id, "formula": crystal.formula}
    if r.error is not None:
        return row | {"error": {"code": r.error.code, "message": r.error.message}}
    return row | {
        "content_hash": r.content_hash,
        "energy_per_atom": r.energy_per_atom,
        "unrelaxed_energy_per_atom": r.unrelaxed_energy_per_atom,
        "relax_steps": r.relax_steps,
        "relax_converged": r.relax_converged,
        "structure_valid": r.structure_valid,
        "composition_valid": r.composition_valid,
        "min_distance": r.min_distance if math.isfinite(r.min_distance) else None,
        "space_group_number": r.space_group_number,
        "space_group_symbol": r.space_group_symbol,
        "novel": r.novel,
        "matched_content_hash": r.matched_content_hash,
        "e_above_hull": r.e_above_hull,
        "formation_energy_per_atom": r.formation_energy_per_atom,
        **_scored_structure(crystal, r),
    }


def _scored_structure(crystal: Crystal, r: Scores) -> dict:
    """The scored structure (the relaxed one with --relax, else the input), in the sample-file
    fields `autoperi eval` reads (atoms in input order)."""
    relaxed = r.lattice is not None and r.frac_coords is not None
    return {
        "lattice": np.asarray(r.lattice if relaxed else crystal.lattice).tolist(),
        "frac_coords": np.asarray(r.frac_coords if relaxed else crystal.frac_coords).tolist(),
        "atomic_numbers": crystal.atomic_numbers.tolist(),
    }
