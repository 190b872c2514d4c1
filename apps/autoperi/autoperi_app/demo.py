"""`autoperi demo`: the platform walkthrough a new user runs first (what `make demo` runs).

1. validate a Perov-5 split in this process; then, on the local stack (`running_stack`, storage
   under `--work-dir`, wiped first so every run starts clean): 2. start Ray + the six services,
3. ingest a Perov-5 train subset and featurise it, 4. sample with the committed checkpoint and
score the samples, 5. one active-learning round (loop service: fine-tune on Ray Train through the
trainer, evaluate, merge or say why not), 6. write `--out` (README.md, demo.json, loop/, and
explore.html: the round's selected crystals in `autoperi explore`'s page) and stop the stack.
The orchestration is in `_demo_run`, the report in `_demo_report`.
"""

import time
from collections import Counter
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.progress import track
from rich.table import Table

from autoperi_app._errors import UserError
from autoperi_app._settings import split_file

console = Console()
Opt = typer.Option


def demo(
    split: Annotated[
        str, Opt(help="Dataset split to validate, e.g. perov_5:test.")
    ] = "perov_5:test",
    checkpoint: Annotated[
        Path, Opt(help="Checkpoint the sampler serves and the loop fine-tunes.")
    ] = Path("checkpoints/perov_5_csp"),
    subset: Annotated[int, Opt(help="Perov-5 train crystals to ingest.")] = 200,
    samples: Annotated[int, Opt(help="CSP samples per demo composition.")] = 4,
    num_targets: Annotated[int, Opt(help="Loop targets: N Perov-5 test formulas.")] = 4,
    samples_per_target: Annotated[int, Opt(help="Loop CSP samples per target.")] = 8,
    fine_tune_steps: Annotated[int, Opt(help="Loop fine-tuning steps (Ray Train).")] = 4,
    held_out_size: Annotated[int, Opt(help="Held-out Perov-5 val crystals evaluated.")] = 50,
    work_dir: Annotated[Path, Opt(help="Stack storage, logs, loop state (wiped first).")] = Path(
        "build/demo"
    ),
    out: Annotated[Path, Opt(help="Report folder.")] = Path("reports/demo"),
    base_port: Annotated[int, Opt(help="Stack ports base_port..+4 (and +1000).")] = 50561,
    validate_only: Annotated[bool, Opt(help="Only step 1 (no stack).")] = False,
) -> None:
    """Validate a split, then run the whole platform locally: stack, ingest, featurise, sample,
    score, one active-learning round; writes a markdown + JSON + PNG report to --out."""
    _check_sizes(subset=subset, samples=samples, num_targets=num_targets,
                 samples_per_target=samples_per_target, fine_tune_steps=fine_tune_steps,
                 held_out_size=held_out_size)  # fmt: skip
    if not 1024 <= base_port <= 64500:
        raise UserError(f"--base-port must be in 1024..64500, got {base_port}")
    path = split_file(split)
    if not validate_only and not (checkpoint / "manifest.json").is_file():
        raise UserError(f"no checkpoint at {checkpoint} (expected {checkpoint}/manifest.json)")
    from autoperi_app._demo_report import write_explorer, write_summary
    from autoperi_app._demo_run import DemoPlan, DemoResult, fresh_work_dir, run_platform

    if not validate_only:
        fresh_work_dir(work_dir)

    result = DemoResult()
    result.figures["out_dir"] = str(out)
    start = time.perf_counter()
    result.figures["validate"] = {"split": split, "rows": _validate(split, path)}
    result.seconds["validate"] = time.perf_counter() - start
    if validate_only:
        return
    plan = DemoPlan(
        train_csv=split_file("perov_5:train"), test_csv=split_file("perov_5:test"),
        held_out_csv=split_file("perov_5:val"),
        checkpoint=checkpoint, work_dir=work_dir, out_dir=out, subset=subset, samples=samples,
        num_targets=num_targets, samples_per_target=samples_per_target,
        fine_tune_steps=fine_tune_steps, held_out_size=held_out_size, base_port=base_port,
    )  # fmt: skip
    try:
        run_platform(plan, console, result)
        page = write_explorer(out, result.figures)
        if page is not None:
            console.print(f"explorer page: {page} (open in a browser; works offline)")
    finally:
        report = write_summary(out, result.figures, result.seconds)
        console.print(f"report: {report} (total {sum(result.seconds.values()):.0f} s)")


def _check_sizes(**sizes: int) -> None:
    """UserError (exit 2) naming the first size option below 1."""
    for name, value in sizes.items():
        if value < 1:
            raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {value}")


def _validate(split: str, path: Path) -> list[tuple[str, str]]:
    """Read, validate and canonicalise every record of the split; the summary rows shown."""
    import autoperi_data

    console.rule(f"[bold]validate[/]: {split}")
    start = time.perf_counter()
    crystals, rejected = [], Counter()
    for record in track(autoperi_data.read_records(path), description="reading + validating"):
        if record.error is not None:
            rejected[record.error.split(":")[0]] += 1
            continue
        crystals.append(record.crystal.canonical())
    seconds = time.perf_counter() - start
    rows = _summary_rows(crystals, rejected, seconds)
    table = Table(title=f"{split}: validated and canonicalised (Niggli cell, wrapped coordinates)")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    for reason, count in rejected.most_common():
        console.print(f"rejected: {reason} x{count}")
    return rows


def _summary_rows(crystals: list, rejected: Counter, seconds: float) -> list[tuple[str, str]]:
    if not crystals:
        raise UserError("the split holds no valid crystal")
    atoms = np.array([c.num_atoms for c in crystals])
    volume_per_atom = np.array([c.volume / c.num_atoms for c in crystals])
    elements = Counter(s for c in crystals for s in set(c.symbols))
    n_unique = len({c.content_hash() for c in crystals})
    return [
        ("crystals accepted", f"{len(crystals):,}"),
        ("records rejected", f"{sum(rejected.values()):,}"),
        ("distinct content hashes", f"{n_unique:,}"),
        ("atoms per cell (min / mean / max)",
         f"{atoms.min()} / {atoms.mean():.2f} / {atoms.max()}"),
        ("volume per atom, A^3 (mean +- std)",
         f"{volume_per_atom.mean():.2f} +- {volume_per_atom.std():.2f}"),
        ("distinct elements", str(len(elements))),
        ("most common elements", ", ".join(f"{e} ({n})" for e, n in elements.most_common(6))),
        ("throughput", f"{len(crystals) / seconds:,.0f} crystals/s"),
    ]  # fmt: skip
