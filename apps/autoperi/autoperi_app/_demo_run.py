"""The platform part of `autoperi demo`: start the local stack, ingest, featurise, sample,
score, one active-learning round, stop; every stage timed and its figures kept for the report.

Reuses the stack launcher (`running_stack`), the loop service and its client (`loop_svc`); this
module only sequences them and records what they return. Everything lives under
`plan.work_dir` (wiped at the start, so each run starts from an empty store).
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from autoperi_app._errors import UserError
from autoperi_app._stack import StackConfig, running_stack

DATASET = "demo-perov5"
LOOP_ID = "demo"
HELD_OUT = "demo-perov5-held-out"
STACK_SERVICES = "ingest, featurestore, scorer, sampler, trainer, loop"
MARKER = ".autoperi-demo"


@dataclass(frozen=True)
class DemoPlan:
    """What the platform walkthrough does (all sizes already validated by the command)."""

    train_csv: Path
    test_csv: Path
    held_out_csv: Path
    checkpoint: Path
    work_dir: Path
    out_dir: Path
    subset: int = 200
    compositions: tuple[str, ...] = ("SrTiO3", "BaZrO3", "KNbO3")
    samples: int = 4
    num_targets: int = 4
    samples_per_target: int = 8
    fine_tune_steps: int = 4
    held_out_size: int = 50
    base_port: int = 50561
    seed: int = 0


@dataclass
class DemoResult:
    """Seconds per stage (in order) and the figures each stage produced."""

    seconds: dict[str, float] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)


class Stages:
    """Times stages and shows a spinner with the stage's name while one runs."""

    def __init__(self, console: Console, result: DemoResult) -> None:
        self.console, self.result = console, result

    @contextlib.contextmanager
    def stage(self, name: str, what: str) -> Iterator[None]:
        start = time.perf_counter()
        self.console.rule(f"[bold]{name}[/]: {what}")
        with self.console.status(f"{what} ..."):
            yield
        seconds = time.perf_counter() - start
        self.result.seconds[name] = seconds
        self.console.print(f"[green]done[/] {name} in {seconds:.1f} s")


def fresh_work_dir(path: Path) -> None:
    """Empty `path` for a clean run. Only a missing or empty folder, or one an earlier demo made
    (it holds MARKER), is wiped; any other folder is refused (UserError), never deleted."""
    if path.exists() and any(path.iterdir()) and not (path / MARKER).is_file():
        raise UserError(f"--work-dir {path} is not empty and not a demo folder; pick another")
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    (path / MARKER).write_text("made by `autoperi demo`; wiped by the next run\n")


def run_platform(plan: DemoPlan, console: Console, result: DemoResult) -> DemoResult:
    """Run stages 2-6 of the demo (stack .. stop) into `result`, in `plan.work_dir` (made by
    `fresh_work_dir`); raises on a failed stage (the stack is stopped either way)."""
    stages = Stages(console, result)
    config = StackConfig(
        storage_uri=str((plan.work_dir / "data").resolve()),
        checkpoint=plan.checkpoint,
        base_port=plan.base_port,
        log_dir=plan.work_dir / "logs",
    )
    result.figures["stack"] = {"storage": str(plan.work_dir / "data"), "logs": str(config.log_dir)}
    with contextlib.ExitStack() as stack_scope:
        with stages.stage("stack", f"start Ray + {STACK_SERVICES}"):
            stack = stack_scope.enter_context(running_stack(config, progress=console.print))
        result.figures["stack"]["addresses"] = dict(stack.addresses)
        commit = _ingest(plan, stack.addresses, stages, result)
        _featurise(stack.addresses, commit, stages, result)
        _sample_and_score(plan, stack.addresses, stages, result, console)
        _loop(plan, config, stack.addresses, stages, result)
        with stages.stage("stop", "stop the stack (SIGTERM, drain, Ray shutdown)"):
            result.figures["exit_codes"] = stack.stop()
    return result


def _ingest(plan: DemoPlan, addresses: dict, stages: Stages, result: DemoResult) -> str:
    """The first `plan.subset` valid train crystals onto `main` of DATASET; the commit id."""
    from loop_svc import IngestClient, held_out_crystals

    with stages.stage("ingest", f"ingest {plan.subset} Perov-5 train crystals"):
        crystals = held_out_crystals(plan.train_csv, plan.subset)
        client = IngestClient(addresses["ingest"])
        reply = client.ingest(
            DATASET, "main", "", crystals, create_dataset=True, message="demo: Perov-5 subset"
        )
        head = client.branches(DATASET)["main"]
    result.figures["ingest"] = {
        "dataset": DATASET,
        "sent": len(crystals),
        "accepted": int(reply.num_accepted),
        "duplicates": int(reply.num_duplicates),
        "rejected": int(reply.num_rejected),
        "commit": reply.commit_id,
        "branch_crystals": int(head.num_crystals),
    }
    return reply.commit_id


def _featurise(addresses: dict, commit: str, stages: Stages, result: DemoResult) -> None:
    """Tensor shards of the commit from the featurestore (the featuriser the trainer uses)."""
    from trainer_svc import FeatureStoreClient

    with stages.stage("featurise", "build the commit's tensor shards in the featurestore"):
        shards = FeatureStoreClient(addresses["featurestore"]).shards(DATASET, commit)
    result.figures["featurise"] = {
        "shards": len(shards),
        "bytes": sum(int(s["size_bytes"]) for s in shards),
    }


def _sample_and_score(
    plan: DemoPlan, addresses: dict, stages: Stages, result: DemoResult, console: Console
) -> None:
    """`plan.samples` CSP samples per composition from the sampler, scored by the scorer with
    novelty against the ingested subset; rows as the loop keeps them (`score_row`)."""
    from loop_svc import Candidates, GrpcSampler, GrpcScorer, score_row

    what = f"sample {plan.samples} x {', '.join(plan.compositions)} (committed checkpoint)"
    with stages.stage("sample", what):
        messages, served = GrpcSampler(addresses["sampler"]).sample(
            plan.compositions, plan.samples, 0, plan.seed, ""
        )
    crystals = Candidates(messages)  # the messages go to the scorer; rows read the crystals
    with stages.stage("score", f"score {len(crystals)} crystals (CHGNet, validity, novelty)"):
        scores = GrpcScorer(addresses["scorer"]).score(crystals.messages, DATASET, "main")
    rows = [score_row(c, s) for c, s in zip(crystals, scores, strict=True)]
    result.figures["sample"] = {"checkpoint_id": served, "rows": rows}
    from autoperi_app._demo_report import scores_table

    console.print(scores_table(rows, served))


def _loop(
    plan: DemoPlan, config: StackConfig, addresses: dict, stages: Stages, result: DemoResult
) -> None:
    """One round of the loop, run by the stack's loop service (StartLoop, then its events on
    the console); its report goes to `out_dir/loop`, from the service's journal."""
    from loop_svc import Evaluation, FineTune, LoopSpec, SelectionCriteria

    spec = LoopSpec(
        name="demo",
        dataset=DATASET,
        base_checkpoint=str(plan.checkpoint),
        targets=tuple(_targets(plan.test_csv, plan.num_targets)),
        evaluation=Evaluation(HELD_OUT, size=plan.held_out_size),
        num_rounds=1,
        samples_per_target=plan.samples_per_target,
        seed=plan.seed,
        fine_tune=FineTune(max_steps=plan.fine_tune_steps),
        selection=SelectionCriteria(
            max_e_above_hull=0.1, max_selected=16, min_fingerprint_distance=0.1
        ),  # `autoperi loop`'s defaults
    )
    what = f"1 round on {', '.join(spec.targets)} (sample .. merge) on the loop service"
    with stages.stage("loop", what):
        request = _loop_request(plan, config, addresses, spec)
        data = _run_on_service(addresses["loop"], request, stages.console, config)
    from loop_svc import write_report

    write_report(data, _loop_dir(config), plan.out_dir / "loop")
    result.figures["loop"] = {"targets": list(spec.targets), "round": data["rounds"][0]}


def _loop_request(plan: DemoPlan, config: StackConfig, addresses: dict, spec):
    """The StartLoopRequest of `spec`: the held-out dataset made and the base checkpoint stored
    first (as `autoperi loop` does)."""
    from dataclasses import replace

    from loop_svc import IngestClient, seed_dataset, spec_to_request, store_checkpoint
    from storage import open_object_store

    ingest = IngestClient(addresses["ingest"])
    seed_dataset(ingest, HELD_OUT, plan.held_out_csv, plan.held_out_size)
    base = store_checkpoint(open_object_store(config.storage_uri), spec.base_checkpoint)
    request = spec_to_request(replace(spec, base_checkpoint=base))
    request.request_id = LOOP_ID
    return request


def _run_on_service(address: str, request, console: Console, config: StackConfig) -> dict:
    """Start the loop, print its events until it ends; its journal (RuntimeError unless it
    succeeded)."""
    from loop_svc import Journal
    from loop_svc.client import follow, start_loop
    from svc_kit import open_channel

    with open_channel(address) as channel:
        loop = start_loop(channel, request)
        for event in follow(channel, loop.loop_id):
            console.print(f"  {event.message}")
    data = Journal.load(_loop_dir(config) / "journal.json").data
    if data["state"] != "succeeded":
        raise RuntimeError(f"the loop {data['state']}: {data['error']}")
    return data


def _loop_dir(config: StackConfig) -> Path:
    """The demo loop's folder in the loop service's state directory (under the stack's store)."""
    return Path(config.storage_uri) / "loops" / LOOP_ID


def _targets(test_csv: Path, count: int) -> list[str]:
    """The first `count` distinct formulas of Perov-5 test (as `autoperi loop` picks them)."""
    from loop_svc import held_out_crystals

    formulas: list[str] = []
    for crystal in held_out_crystals(test_csv, 10 * count):
        if crystal.formula not in formulas:
            formulas.append(crystal.formula)
    return formulas[:count]
