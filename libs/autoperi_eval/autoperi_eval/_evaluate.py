"""`evaluate`: one call from samples + reference split to metrics, report files and figures."""

from __future__ import annotations

import dataclasses
import os
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from autoperi_data import SplitSpec

from ._config import EvalSettings, Task
from ._context import Context
from ._csp import run_csp
from ._dng import run_dng
from ._io import (
    EvalInputError,
    data_dir_from_env,
    load_reference,
    load_samples,
    parse_reference,
)
from ._parallel import ProgressFn
from ._plots import report_figures
from ._report import EvalReport, machine_info, markdown, write_csv, write_json


def source_name(samples: Any) -> str:
    """How a report names its samples: a file under the working directory by its relative path,
    one elsewhere by its name only (reports carry no host paths), a split as given."""
    if not isinstance(samples, str | Path):
        return f"<{len(samples)} in memory>"
    path = Path(samples)
    if not path.exists():
        return str(samples)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return path.name


def _split_spec(samples: Any) -> SplitSpec | None:
    """A `dataset:split` string that is not a file: a split used as samples (data as generator)."""
    if isinstance(samples, str) and not Path(samples).exists() and ":" in samples:
        return parse_reference(samples)
    return None


def evaluate(
    samples: str | Path | Sequence[Any],
    reference: str,
    task: Task = "dng",
    name: str | None = None,
    *,
    settings: EvalSettings | None = None,
    out_dir: str | Path | None = "reports/eval",
    progress: ProgressFn | None = None,
) -> EvalReport:
    """Evaluate generated crystals against a reference split with the CDVAE / DiffCSP protocol.

    samples: a CIF directory, an extxyz file, a JSON sample file, pymatgen `Structure`s /
        objects with `to_pymatgen()` (e.g. `xtal.Crystal`), see `load_samples`; or a split
        `dataset:split` evaluated as if it were a generator.
    reference: `dataset:split[start:stop]`, e.g. `perov_5:test`, `mp_20:test`, `carbon_24:val`.
    task: "dng" (validity, COV, property distances, stability, novelty, symmetry) or "csp"
        (match rate and RMSE, k = 1 gated / CDVAE / ungated and k = settings.k).
    name: report name; files go to `out_dir/<name>.{json,csv,md}` and `<name>_*.png`
        (`out_dir=None`: nothing is written).
    progress: optional `progress(stage, done, total)` callback.

    Work runs in worker processes started with `spawn`: a script that calls `evaluate` at top
    level needs the usual `if __name__ == "__main__":` guard.
    Raises `EvalInputError` (a ValueError with a plain message) for unusable inputs.
    """
    settings = settings or EvalSettings()
    if task not in ("dng", "csp"):
        raise EvalInputError(f"task must be 'dng' or 'csp', not {task!r}")
    sample_split = _split_spec(samples)
    if name is None:
        stem = Path(samples).stem if isinstance(samples, str | Path) else "samples"
        name = f"{stem.replace(':', '_')}_{task}"
    if not re.fullmatch(r"[\w.-]+", name):
        raise EvalInputError(f"report name {name!r} may only hold letters, digits, '_', '-', '.'")
    spec = parse_reference(reference)
    data_dir = settings.data_dir or data_dir_from_env()
    start, load_start = time.perf_counter(), os.getloadavg()
    with Context(settings, spec, data_dir, progress) as ctx:
        with ctx.stage("load"):
            records = (
                load_reference(sample_split, data_dir, ctx.cache)
                if sample_split is not None
                else load_samples(samples)
            )
            ref = load_reference(spec, data_dir, ctx.cache)
        if not records:
            raise EvalInputError("there are no samples to evaluate")
        if not ref:
            raise EvalInputError(f"reference {spec} is empty")
        outcome = (run_dng if task == "dng" else run_csp)(ctx, records, ref)
        cache_stats = {k: dataclasses.asdict(v) for k, v in ctx.cache.stats.items()}
        report = EvalReport(
            name=name,
            task=task,
            reference=str(spec),
            source=source_name(samples),
            metrics=outcome.metrics,
            counts=outcome.counts,
            settings=settings.to_dict(),
            timings=ctx.timings,
            wall_time_s=0.0,
            machine={},
            cache=cache_stats,
            notes=ctx.notes,
            ids=[r.id for r in records],
            columns=outcome.columns,
        )
        if out_dir is not None:
            directory = Path(out_dir)
            directory.mkdir(parents=True, exist_ok=True)
            if settings.plots:
                with ctx.stage("plots"):
                    report.paths.update(
                        report_figures(name, directory, outcome.columns, outcome.reference, records)
                    )
    report.wall_time_s = time.perf_counter() - start
    report.machine = machine_info(load_start)
    if out_dir is not None:
        _write(report, Path(out_dir))
    return report


def _write(report: EvalReport, directory: Path) -> None:
    paths = {kind: directory / f"{report.name}.{kind}" for kind in ("json", "csv", "md")}
    report.paths.update({kind: p.name for kind, p in paths.items()})
    write_csv(report, paths["csv"])
    paths["md"].write_text(markdown(report))
    write_json(report, paths["json"])
