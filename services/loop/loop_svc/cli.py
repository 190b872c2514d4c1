"""`autoperi loop`: run (or resume) an active-learning loop on the loop service, following its
progress; `autoperi serve loop`: the LoopService itself.

Found by the `autoperi` application through the entry point in this service's pyproject.toml."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from autoperi_data import DATA_DIR_ENV, split_path
from svc_kit.cli_options import Host, Port, StackContext, StackRole, StorageUri

Opt = typer.Option
_BASE = "checkpoints/perov_5_csp"
_BASE_DE_NOVO = "checkpoints/perov_5_dng"
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
    chemical_space: Annotated[
        str, Opt(help="De novo candidates instead of --targets: allowed elements, e.g. Mg,Rh,N.")
    ] = "",
    required_elements: Annotated[str, Opt(help="De novo: elements in every sample.")] = "",
    min_atoms: Annotated[int, Opt(help="De novo: fewest atoms per cell (0: no bound).")] = 0,
    max_atoms: Annotated[int, Opt(help="De novo: most atoms per cell (0: no bound).")] = 0,
    samples_per_target: Annotated[
        int, Opt(help="CSP samples per target per round (de novo: samples per round).")
    ] = 8,
    steps: Annotated[int, Opt(help="Sampling steps (0: the checkpoint's).")] = 0,
    base_checkpoint: Annotated[
        str, Opt(help=f"Checkpoint id or directory (default {_BASE}; de novo {_BASE_DE_NOVO}).")
    ] = "",
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
    held_out_dataset: Annotated[
        str, Opt(help="Held-out dataset (default <dataset>-held-out, made from --held-out).")
    ] = "",
    eval_steps: Annotated[int, Opt(help="Evaluation sampling steps.")] = 0,
    min_improvement: Annotated[float, Opt(help="Merge when the metric gains this.")] = 0.02,
    objective: Annotated[
        str, Opt(help="What decides a merge: metric, or sun_yield (needs a scorer hull).")
    ] = "metric",
    yield_samples: Annotated[int, Opt(help="sun_yield: fresh samples per checkpoint.")] = 1000,
    stable_e_hull: Annotated[
        float, Opt(help="sun_yield: stable at relaxed E_hull <= this, eV/atom.")
    ] = 0.08,
    bootstrap_resamples: Annotated[int, Opt(help="sun_yield: bootstrap resamples.")] = 2000,
    confidence: Annotated[float, Opt(help="sun_yield: confidence of the interval.")] = 0.95,
    max_csp_drop: Annotated[
        float, Opt(help="sun_yield: largest held-out CSP match-rate drop of a merge.")
    ] = 0.01,
    seed: Annotated[int, Opt(help="Seed of sampling, training and evaluation.")] = 0,
    seed_from: Annotated[Path | None, Opt(help="Create a missing dataset from this CSV.")] = None,
    seed_size: Annotated[int, Opt(help="Crystals taken from --seed-from.")] = 200,
    state_dir: Annotated[
        Path, Opt(help="The loop service's journals and round files (read for the report).")
    ] = Path("autoperi-data/loops"),
    storage_uri: Annotated[str, Opt(help="Object store the trainer writes.")] = "autoperi-data",
    out: Annotated[Path | None, Opt(help="Report folder (default reports/loop/<loop id>).")] = None,
    address: Annotated[str, Opt(help="Loop service host:port.")] = "127.0.0.1:50066",
    ingest: Annotated[str, Opt(help="Ingest host:port.")] = "127.0.0.1:50061",
    scorer: Annotated[str, Opt(help="Scorer host:port (--in-process).")] = "127.0.0.1:50063",
    sampler: Annotated[str, Opt(help="Sampler host:port (--in-process).")] = "127.0.0.1:50064",
    trainer: Annotated[str, Opt(help="Trainer host:port (--in-process).")] = "127.0.0.1:50065",
    sample_in_process: Annotated[
        bool, Opt(help="Sample from the loop's current checkpoint, not the sampler service.")
    ] = False,
    in_process: Annotated[
        bool, Opt(help="Run the loop in this process instead of the loop service.")
    ] = False,
) -> None:
    """Sample -> score -> select -> ingest -> fine-tune -> evaluate -> merge, for N rounds, on
    the loop service (--address), printing its progress. Candidates: CSP of --targets, or de
    novo on --chemical-space (with --objective sun_yield: the S.U.N. yield of fresh samples
    decides each merge; candidates are then relaxed and ingested relaxed).

    Resumable: run again with the same --loop-id (resume) after a failure; finished stages are
    skipped and no data is added twice (the service also resumes its running loops itself after
    a restart). Writes a markdown + PNG report from the journal under --state-dir."""
    from loop_svc._cli_run import Plan, run_in_process, run_on_service

    plan = Plan(
        spec=_spec(locals()), loop_id=loop_id, held_out=held_out, seed_from=seed_from,
        seed_size=seed_size, state_dir=state_dir, storage_uri=storage_uri, out=out,
        ingest=ingest,
    )  # fmt: skip
    if in_process:
        run_in_process(plan, scorer, sampler, trainer)
    else:
        run_on_service(plan, address)


def _spec(a: dict):  # -> LoopSpec
    """The loop's spec from the `loop` command's arguments (by name); a bad plan is a usage
    error."""
    from loop_svc._select import SelectionCriteria
    from loop_svc._spec import Evaluation, FineTune, LoopSpec

    try:
        space = _chemical_space(a)
        base = a["base_checkpoint"] or (_BASE if space is None else _BASE_DE_NOVO)
        targets = () if space else tuple(_targets(a["targets"], a["num_targets"]))
        return LoopSpec(
            name=a["name"], dataset=a["dataset"], base_checkpoint=base, branch=a["branch"],
            targets=targets, chemical_space=space,
            num_rounds=a["rounds"], samples_per_target=a["samples_per_target"],
            sample_steps=a["steps"], seed=a["seed"],
            selection=SelectionCriteria(
                True, True, a["max_e_hull"], a["max_selected"], a["min_fp_distance"]
            ),
            fine_tune=FineTune(
                a["fine_tune_steps"], a["batch_size"], a["lr"], a["ema_decay"], a["workers"]
            ),
            evaluation=Evaluation(
                a["held_out_dataset"] or f"{a['dataset']}-held-out", "main", a["held_out_size"],
                a["eval_steps"], min_improvement=a["min_improvement"], objective=a["objective"],
                yield_samples=a["yield_samples"], stable_e_above_hull=a["stable_e_hull"],
                bootstrap_resamples=a["bootstrap_resamples"], confidence=a["confidence"],
                max_csp_drop=a["max_csp_drop"],
            ),
            sample_in_process=a["sample_in_process"],
        )  # fmt: skip
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def _chemical_space(a: dict):  # -> ChemicalSpace | None
    """The --chemical-space (with --required-elements, --min-atoms, --max-atoms), or None."""
    from loop_svc._spec import ChemicalSpace

    if not a["chemical_space"].strip():
        if a["required_elements"].strip():
            raise ValueError("--required-elements needs --chemical-space")
        return None
    if a["targets"].strip():
        raise ValueError("give --targets (CSP) or --chemical-space (de novo), not both")
    return ChemicalSpace(
        tuple(_symbols(a["chemical_space"])), tuple(_symbols(a["required_elements"])),
        a["min_atoms"], a["max_atoms"],
    )  # fmt: skip


def _symbols(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


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


def serve(
    host: Host = None,
    port: Port = None,
    storage_uri: StorageUri = None,
    state_dir: Annotated[
        str | None, Opt(help="Loop journals (default autoperi-data/loops).")
    ] = None,
    ingest_address: Annotated[str | None, Opt(help="Ingest host:port.")] = None,
    scorer_address: Annotated[str | None, Opt(help="Scorer host:port.")] = None,
    sampler_address: Annotated[str | None, Opt(help="Sampler host:port.")] = None,
    trainer_address: Annotated[str | None, Opt(help="Trainer host:port.")] = None,
) -> None:
    """Serve LoopService (port 50066 unless told otherwise): loops run in this process, kept
    in journals under --state-dir; loops that were running resume when it starts again. Other
    settings come from AUTOPERI_LOOP_* variables."""
    from svc_kit import settings_from_options

    from loop_svc._settings import LoopSettings
    from loop_svc.serve_main import main

    main(
        settings_from_options(
            LoopSettings,
            host=host,
            port=port,
            storage_uri=storage_uri,
            state_dir=state_dir,
            ingest_address=ingest_address,
            scorer_address=scorer_address,
            sampler_address=sampler_address,
            trainer_address=trainer_address,
        )
    )


def _stack_args(ctx: StackContext) -> list[str]:
    """The stack's store, its loops under it when it is a directory, and the other services."""
    local = "://" not in ctx.storage_uri or ctx.storage_uri.startswith("file://")
    state = [] if not local else ["--state-dir", f"{ctx.storage_uri.removeprefix('file://')}/loops"]
    return [
        "--storage-uri", ctx.storage_uri, *state,
        "--ingest-address", ctx.address("ingest"), "--scorer-address", ctx.address("scorer"),
        "--sampler-address", ctx.address("sampler"), "--trainer-address", ctx.address("trainer"),
    ]  # fmt: skip


COMMANDS = {"loop": loop}
STACK = StackRole(order=5, args=_stack_args)
