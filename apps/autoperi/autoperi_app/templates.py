"""`autoperi templates build | attach | ion-exchange`: template checkpoints.

`build` reads the config's splits through the one data path (dataset commits, their shards, the
held-out rows of the val split), idealises the pool, labels candidates with the evaluation
protocol's StructureMatcher (in a worker pool), trains the ranker and writes the checkpoint (kind
csp/templates) with the held-out match rates in its manifest. `attach` puts a symmetric flow
checkpoint inside a template checkpoint (flow/) with the time its integration starts from.
`ion-exchange` writes the de novo baseline (kind dng/ion_exchange) over a template checkpoint's
library.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from autoperi_app._datasets import DEFAULT_STORE

app = typer.Typer(help="Template CSP checkpoints: build, attach a symmetric flow.")
console = Console()


@app.command("build")
def build(
    config: Annotated[Path, typer.Option(help="Templates YAML config.", exists=True)],
    out: Annotated[Path, typer.Option(help="Checkpoint directory to write.")],
    datasets: Annotated[Path, typer.Option(help="Store of the dataset commits.")] = DEFAULT_STORE,
    workers: Annotated[int, typer.Option(min=1, help="Matcher worker processes.")] = 2,
) -> None:
    """Build a template checkpoint from the config's training pool (see the module notes)."""
    from autoperi_data import CrystalArrays, parse_split, read_split
    from autoperi_eval import Pool, rms_pair
    from autoperi_model import Config, TemplatesConfig, build_templates, save_templates

    from autoperi_app._datasets import DatasetStore

    parsed = TemplatesConfig.from_yaml(config)
    flow_config = Config(data=parsed.data, flow={"symmetric": True})
    data = DatasetStore(datasets).training_data(flow_config)
    spec = f"{parsed.data.dataset}:{parsed.data.val_split}[:{parsed.data.held_out_rows}]"
    held = [CrystalArrays.of(r.crystal) for r in read_split(parse_split(spec))]
    console.print(f"pool: {data.version} ({len(data.train)} crystals); held out: {spec}")
    pool = Pool(workers)
    try:
        built = build_templates(
            parsed, data.train, held, lambda pairs: pool.map(rms_pair, pairs, chunk_size=32)
        )
    finally:
        pool.close()
    info = {
        "config": parsed.model_dump(mode="json"),
        "data_version": data.version,
        "held_out": spec,
        "hidden": parsed.hidden,
        "metrics": built.metrics,
        "start_time": parsed.start_time,
    }
    save_templates(out, built.library, built.ranker, info)
    console.print_json(data=built.metrics)


@app.command("attach")
def attach(
    templates: Annotated[Path, typer.Option(help="Template checkpoint directory.", exists=True)],
    flow: Annotated[
        Path | None, typer.Option(help="Symmetric flow that refines the templates.", exists=True)
    ] = None,
    fallback: Annotated[
        Path | None,
        typer.Option(help="P1 CSP flow for cells no template fits (csp/flow).", exists=True),
    ] = None,
    start_time: Annotated[
        float, typer.Option(min=0.0, max=0.99, help="Integration starts at this time.")
    ] = 0.0,
) -> None:
    """Copy a symmetric flow (flow/) or a P1 CSP fallback (fallback/) into a template checkpoint:
    weights, config and manifest."""
    from autoperi_model import read_manifest

    if flow is None and fallback is None:
        raise typer.BadParameter("give --flow, --fallback or both")
    if flow is not None:
        if not read_manifest(flow).config.flow.symmetric:
            raise typer.BadParameter(f"{flow} is not a symmetric flow (flow.symmetric is false)")
        _copy_checkpoint(flow, templates / "flow")
        manifest_path = templates / "manifest.json"
        manifest = json.loads(manifest_path.read_text())
        manifest["start_time"] = start_time
        manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
        console.print(f"{flow} attached to {templates} (start time {start_time})")
    if fallback is not None:
        config = read_manifest(fallback).config
        if config.task != "csp" or config.process != "flow" or config.flow.symmetric:
            raise typer.BadParameter(f"{fallback} is not a P1 CSP flow (task csp, process flow)")
        _copy_checkpoint(fallback, templates / "fallback")
        console.print(f"{fallback} attached to {templates} as the fallback")


def _copy_checkpoint(source: Path, target: Path) -> None:
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir()
    for name in ("model.pt", "config.yaml", "manifest.json"):
        shutil.copy2(source / name, target / name)


@app.command("ion-exchange")
def ion_exchange(
    templates: Annotated[
        Path, typer.Option(help="Template checkpoint (its library).", exists=True)
    ],
    out: Annotated[Path, typer.Option(help="Checkpoint directory to write.")],
    learned: Annotated[
        bool,
        typer.Option(
            help="The learned substitution generator: charge-balanced draws and atomic volumes "
            "fitted to the library (default: the baseline)."
        ),
    ] = False,
    learned_partners: Annotated[
        bool,
        typer.Option(
            help="Also weight exchange partners by the library's substitution score (measured "
            "to lower S.U.N.; for ablations)."
        ),
    ] = False,
) -> None:
    """The ion-exchange de novo baseline, or with --learned the learned substitution
    generator, over the library of a template checkpoint."""
    from autoperi_model import SubstitutionOptions, save_ion_exchange

    options = SubstitutionOptions(
        learned_partners=learned_partners, charge_balanced=learned, learned_volumes=learned
    )
    save_ion_exchange(templates, out, options)
    what = "learned substitution" if learned else "ion-exchange"
    console.print(f"{what} checkpoint {out} over the library of {templates}")
