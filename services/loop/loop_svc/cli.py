"""`autoperi loop`: run (or resume) an active-learning loop against running services."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from autoperi_data import DATA_DIR_ENV, split_path

Opt = typer.Option
_BASE = "checkpoints/perov_5_csp"
_DATA = Path(os.environ.get(DATA_DIR_ENV, "datasets"))
_VAL = split_path("perov_5", "val", _DATA, must_exist=False)


def loop(
    dataset: Annotated[str, Opt(help="Dataset the loop grows (created from --seed-from).")],
    targets: Annotated[str, Opt(help="CSP target compositions, comma separated.")] = "",
    num_targets: Annotated[int, Opt(help="Without --targets: N Perov-5 test formulas.")] = 4,
    name: Annotated[str, Opt(help="Human-readable loop name.")] = "loop",
    loop_id: Annotated[str, Opt(help="Loop id; an existing id resumes that loop.")] = "",
    branch: Annotated[str, Opt(help="Branch the rounds fork from and merge into.")] = "main",
    rounds: Annotated[int, Opt(help="Rounds to run.")] = 3,
    samples_per_target: Annotated[int, Opt(help="CSP samples per target per round.")] = 8,
    steps: Annotated[int, Opt(help="Sampling steps (0: the checkpoint's).")] = 0,
    base_checkpoint: Annotated[str, Opt(help="Checkpoint id or directory.")] = _BASE,
    max_selected: Annotated[int, Opt(help="Keep at most this many per round (0: all).")] = 16,
    max_e_hull: Annotated[float | None, Opt(help="E_hull limit, eV/atom (with a hull).")] = 0.1,
    min_fp_distance: Annotated[float, Opt(help="Min fingerprint distance (0: off).")] = 0.1,
    fine_tune_steps: Annotated[int, Opt(help="Fine-tuning steps per round.")] = 4,
    batch_size: Annotated[int, Opt(help="Fine-tuning batch size.")] = 16,
    lr: Annotated[float, Opt(help="Fine-tuning learning rate.")] = 1e-4,
    ema_decay: Annotated[float, Opt(help="Fine-tuning EMA decay (sampling uses EMA).")] = 0.5,
    workers: Annotated[int, Opt(help="Training workers.")] = 1,
    held_out: Annotated[Path, Opt(help="Held-out crystals (never trained on).")] = _VAL,
    held_out_size: Annotated[int, Opt(help="Held-out crystals evaluated.")] = 50,
    eval_steps: Annotated[int, Opt(help="Evaluation sampling steps.")] = 0,
    min_improvement: Annotated[float, Opt(help="Merge when the metric gains this.")] = 0.02,
    seed: Annotated[int, Opt(help="Seed of sampling, training and evaluation.")] = 0,
    seed_from: Annotated[Path | None, Opt(help="Create a missing dataset from this CSV.")] = None,
    seed_size: Annotated[int, Opt(help="Crystals taken from --seed-from.")] = 200,
    state_dir: Annotated[Path, Opt(help="Journals and round files.")] = Path("autoperi-data/loops"),
    storage_uri: Annotated[str, Opt(help="Object store the trainer writes.")] = "autoperi-data",
    out: Annotated[Path | None, Opt(help="Report folder (default reports/loop/<loop id>).")] = None,
    ingest: Annotated[str, Opt(help="Ingest host:port.")] = "127.0.0.1:50061",
    scorer: Annotated[str, Opt(help="Scorer host:port.")] = "127.0.0.1:50063",
    sampler: Annotated[str, Opt(help="Sampler host:port.")] = "127.0.0.1:50064",
    trainer: Annotated[str, Opt(help="Trainer host:port.")] = "127.0.0.1:50065",
    sample_in_process: Annotated[bool, Opt(help="Sample in this process.")] = False,
) -> None:
    """Sample -> score -> select -> ingest -> fine-tune -> evaluate -> merge, for N rounds.

    Resumable: run again with the same --loop-id after a crash; finished stages are skipped
    and no data is added twice. Writes a markdown + PNG report and the journal."""
    import logging
    import uuid

    from loop_svc._run import Addresses, build_clients, run_loop, seed_dataset
    from loop_svc._select import SelectionCriteria
    from loop_svc._spec import Evaluation, FineTune, LoopSpec, portable_path

    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    logger = logging.getLogger("loop_svc")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # the CLI's root handler would print each line again
    loop_id = loop_id or uuid.uuid4().hex[:12]
    try:
        spec = LoopSpec(
            name=name, dataset=dataset, base_checkpoint=base_checkpoint, branch=branch,
            targets=tuple(_targets(targets, num_targets)), num_rounds=rounds,
            samples_per_target=samples_per_target, sample_steps=steps, seed=seed,
            selection=SelectionCriteria(True, True, max_e_hull, max_selected, min_fp_distance),
            fine_tune=FineTune(fine_tune_steps, batch_size, lr, ema_decay, workers),
            evaluation=Evaluation(
                portable_path(held_out), held_out_size, eval_steps, min_improvement=min_improvement
            ),
        )  # fmt: skip
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    addresses = Addresses(ingest, scorer, sampler, trainer)
    cache = state_dir / loop_id / "checkpoints"
    clients = build_clients(spec, addresses, storage_uri, cache, sample_in_process)
    added = seed_dataset(clients.ingest, spec, seed_from, seed_size) if seed_from else 0
    if added:
        typer.echo(f"dataset {dataset}: {added} seed crystals added")
    typer.echo(f"loop {loop_id}: journal {state_dir / loop_id / 'journal.json'}")
    report = out or Path("reports/loop") / loop_id
    try:
        data = run_loop(spec, clients, state_dir, loop_id, report)
    except Exception as exc:
        typer.echo(f"loop {loop_id} failed: {type(exc).__name__}: {exc}", err=True)
        typer.echo(f"resume with --loop-id {loop_id}; report in {report}", err=True)
        raise typer.Exit(1) from None
    for rnd in data["rounds"]:
        selected = rnd.get("num_selected", 0)
        typer.echo(f"round {rnd['index']}: {selected} selected; {rnd['decision']}")
    typer.echo(f"report: {report / 'README.md'}")


def _targets(text: str, count: int) -> list[str]:
    """The given formulas, or the first `count` distinct formulas of Perov-5 test."""
    if text.strip():
        return [t.strip() for t in text.split(",") if t.strip()]
    from loop_svc._evaluate import held_out_crystals

    formulas: list[str] = []
    for crystal in held_out_crystals(split_path("perov_5", "test", _DATA), 10 * count):
        if crystal.formula not in formulas:
            formulas.append(crystal.formula)
    return formulas[:count]


COMMANDS = {"loop": loop}
