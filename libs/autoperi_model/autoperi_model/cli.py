"""Typer commands of the model: sample, relax-lattice, eval-lattice and the sampling benchmark
(mounted by the autoperi application, which also holds `autoperi train`: training reads the
featurised shards of a dataset commit, which needs the platform's services).

Thin: each command builds a facade (`Generator`, `bench`) and prints a summary.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from xtal import write_samples

app = typer.Typer(help="Train and sample the AutoPeri flow model.", no_args_is_help=True)
bench_app = typer.Typer(
    help="Model benchmarks; results go to reports/bench/.", no_args_is_help=True
)
app.add_typer(bench_app, name="bench")
console = Console()
log = logging.getLogger(__name__)


@app.command("sample")
def sample_cmd(
    checkpoint: Annotated[Path, typer.Option(help="Checkpoint directory.")],
    out: Annotated[Path, typer.Option(help="Output directory for CIFs and samples.json.")],
    composition: Annotated[
        list[str] | None, typer.Option(help="Cell composition, e.g. SrTiO3 (repeatable).")
    ] = None,
    split: Annotated[
        str | None,
        typer.Option(
            help="Predict every crystal of a split, e.g. perov_5:test or perov_5:test[0:500]."
        ),
    ] = None,
    dng: Annotated[
        bool, typer.Option("--dng", help="De novo: `n` crystals from a task: dng checkpoint.")
    ] = False,
    n: Annotated[
        int, typer.Option(min=1, help="Samples per composition or split row (with --dng: in all).")
    ] = 1,
    steps: Annotated[int, typer.Option(min=1, help="Integration steps.")] = 50,
    sampler: Annotated[
        str | None,
        typer.Option(
            help="euler or heun (flow checkpoints), ddpm (diffusion); default: euler "
            "for flows, ddpm for diffusion."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    skip_unserved: Annotated[
        bool,
        typer.Option(
            "--skip-unserved",
            help="With --split: leave out rows the checkpoint cannot serve (a template "
            "checkpoint's cells no template fits); `autoperi eval` counts them as misses.",
        ),
    ] = False,
    elements: Annotated[
        str | None, typer.Option(help="With --dng: allowed elements, e.g. Li-Fe-P-O.")
    ] = None,
    required: Annotated[
        str | None, typer.Option(help="With --dng: elements every sample contains, e.g. Li.")
    ] = None,
    min_atoms: Annotated[int, typer.Option(min=1, help="With --dng: fewest atoms per cell.")] = 1,
    max_atoms: Annotated[
        int, typer.Option(min=0, help="With --dng: most atoms per cell (0: any).")
    ] = 0,
    space_group: Annotated[
        int,
        typer.Option(
            min=0, max=230, help="With --dng: space group (checkpoints that take it; 0: any)."
        ),
    ] = 0,
) -> None:
    """Crystal structure prediction: `n` structures per composition (or per row of `--split`,
    tagged with `gt_index` for `autoperi eval --task csp`); or with `--dng`, `n` de novo
    crystals (for `autoperi eval --task dng`), optionally within --elements, holding --required,
    with --min-atoms..--max-atoms atoms and in --space-group (a checkpoint that cannot honour a
    condition refuses it). Written as CIF + samples.json."""
    from autoperi_model._generator import Generator
    from autoperi_model._sampling import parse_composition

    if sampler not in (None, "euler", "heun", "ddpm"):
        raise typer.BadParameter(f"unknown sampler {sampler!r}; use euler, heun or ddpm")
    if (bool(composition) + bool(split) + dng) != 1:
        raise typer.BadParameter("give one of --composition (one or more), --split or --dng")
    gen = Generator.from_checkpoint(checkpoint, tasks=("dng",) if dng else ("csp",))
    sampler = sampler or gen.samplers[0]
    if dng:
        request = _dng_request(elements, required, (min_atoms, max_atoms), space_group, gen)
        try:
            crystals = gen.generate_dng(n, steps=steps, sampler=sampler, seed=seed, **request)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
        requested, extra = [c.formula for c in crystals], None
    elif split:
        cells, requested, extra = _split_cells(split, n)
        if skip_unserved:
            kept = [i for i, cell in enumerate(cells) if gen.serves(cell)]
            console.print(f"{(len(cells) - len(kept)) // n} rows left out: no template fits")
            if not kept:
                raise typer.BadParameter(f"the checkpoint serves no row of {split}")
            cells, requested, extra = ([x[i] for i in kept] for x in (cells, requested, extra))
        indices = [i % n for i in range(len(cells))]
        crystals = gen.generate_types(cells, steps, sampler, seed, indices=indices)
    else:
        for text in composition:
            parse_composition(text)
        crystals = gen.generate_csp(composition, n, steps=steps, sampler=sampler, seed=seed)
        requested, extra = [c for c in composition for _ in range(n)], None
    write_samples(crystals, requested, out, gen.checkpoint_id, extra)
    console.print(
        f"{len(crystals)} crystals ({crystals[0].properties['nfe']:.0f} NFE each) -> {out}"
    )


def _dng_request(
    elements: str | None, required: str | None, atoms: tuple[int, int], group: int, gen
) -> dict:
    """`generate_dng` keywords of the --dng options (element lists like "Li-Fe-P-O" or
    "Li,Fe"); BadParameter naming an unknown element."""
    from autoperi_model._sampling import element_numbers

    def numbers(text: str | None, field: str) -> tuple[int, ...]:
        symbols = [s for s in (text or "").replace(",", "-").split("-") if s]
        try:
            return element_numbers(symbols, gen.max_z, field)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None

    conditions = {"space_group_number": float(group)} if group else {}
    return {
        "elements": numbers(elements, "--elements"),
        "required": numbers(required, "--required"),
        "atoms": atoms,
        "conditions": conditions,
    }


def _split_cells(spec: str, n: int) -> tuple[list, list[str], list[dict[str, float]]]:
    """Atomic numbers, formulas and `gt_index` tags (rows of the split file) of `n` samples per
    row of `dataset:split`, or of its rows start..stop-1 with `dataset:split[start:stop]`."""
    from collections import Counter

    import numpy as np
    from autoperi_data import DatasetError, parse_split, read_split
    from pymatgen.core import Composition, Element

    try:
        records = read_split(parse_split(spec))
    except DatasetError as exc:
        raise typer.BadParameter(str(exc)) from None
    rows = [r.index for r in records]
    cells = {r.index: np.asarray(r.crystal.atomic_numbers) for r in records}
    formulas = {
        i: Composition({Element.from_Z(z): k for z, k in Counter(c.tolist()).items()}).formula
        for i, c in cells.items()
    }
    samples = [i for i in rows for _ in range(n)]
    tags = [{"gt_index": float(i)} for i in samples]
    return [cells[i] for i in samples], [formulas[i].replace(" ", "") for i in samples], tags


@app.command("relax-lattice")
def relax_lattice_cmd(
    checkpoint: Annotated[Path, typer.Option(help="A task: lattice checkpoint directory.")],
    crystals: Annotated[
        Path, typer.Option("--input", help="CIF or CDVAE-style CSV file.", exists=True)
    ],
    out: Annotated[Path, typer.Option(help="Output directory for CIFs and samples.json.")],
    cubic: Annotated[
        bool, typer.Option("--cubic", help="Start from the cube of each cell's volume.")
    ] = False,
    steps: Annotated[int, typer.Option(min=1, help="Integration steps.")] = 20,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Restore the lattices of crystals with fixed fractional coordinates (EMPNN's lattice
    denoising; with --cubic, reconstruction from a cubic cell of the same volume)."""
    import torch
    from autoperi_data import read_records

    from autoperi_model._generator import Generator
    from autoperi_model._lattice import volume_cube

    gen = Generator.from_checkpoint(checkpoint, tasks=("lattice",))
    records = list(read_records(crystals))
    for bad in (r for r in records if r.crystal is None):
        console.print(f"skipped record {bad.key}: {bad.error}")
    given = [r.crystal for r in records if r.crystal is not None]
    if not given:
        raise typer.BadParameter(f"no readable crystal in {crystals}")
    if cubic:
        cubes = volume_cube(torch.as_tensor([c.lattice for c in given])).numpy()
        given = [c.replace(lattice=cube) for c, cube in zip(given, cubes, strict=True)]
    restored = gen.restore_lattices(given, steps=steps, sampler="euler", seed=seed)
    write_samples(restored, [c.formula for c in restored], out, gen.checkpoint_id)
    console.print(f"{len(restored)} lattices restored ({steps} Euler steps) -> {out}")


@app.command("eval-lattice")
def eval_lattice_cmd(
    checkpoint: Annotated[Path, typer.Option(help="A task: lattice checkpoint directory.")],
    split: Annotated[str, typer.Option(help="dataset:split, e.g. mp_20:test.")] = "mp_20:test",
    deform_std: Annotated[float, typer.Option(min=0.0, help="Std of the deformation A.")] = 0.1,
    steps: Annotated[int, typer.Option(min=1, help="Integration steps.")] = 20,
    seed: Annotated[int, typer.Option(help="Seed of the deformations.")] = 0,
    name: Annotated[str, typer.Option(help="Report name.")] = "mp_20_lattice",
    out: Annotated[Path, typer.Option(help="Report directory.")] = Path("reports/eval"),
) -> None:
    """EMPNN's lattice tables (denoising improvement, reconstruction MAE from a cubic cell)
    -> <out>/<name>.json and .md."""
    import sys

    from autoperi_data import DatasetError, parse_split, read_split

    from autoperi_model._batch import CrystalTable
    from autoperi_model._generator import Generator
    from autoperi_model._lattice_eval import evaluate_lattice_tasks, write_lattice_report

    try:
        records = read_split(parse_split(split))
    except DatasetError as exc:
        raise typer.BadParameter(str(exc)) from None
    gen = Generator.from_checkpoint(checkpoint, tasks=("lattice",))
    table = CrystalTable.from_crystals([r.crystal.canonical() for r in records])
    result = evaluate_lattice_tasks(gen, table, deform_std, steps, seed=seed)
    command = "autoperi " + " ".join(sys.argv[1:])
    console.print(f"report -> {write_lattice_report(result, out, name, command)}")


@bench_app.command("sample")
def bench_sample_cmd(
    checkpoint: Annotated[Path, typer.Option(help="Checkpoint directory.")],
    out: Annotated[Path, typer.Option(help="Output directory.")] = Path("reports/bench"),
    n: Annotated[int, typer.Option(min=1, help="Crystals to sample.")] = 256,
    steps: Annotated[int, typer.Option(min=1, help="Integration steps.")] = 50,
    sampler: Annotated[str, typer.Option(help="euler or heun.")] = "euler",
    split: Annotated[
        str | None,
        typer.Option(
            help="Time CSP of every row of this split (e.g. mp_20:test[0:1000]) with the "
            "checkpoint's own sampler and steps, on 2 threads -> sample_cells.json / .md."
        ),
    ] = None,
    baseline: Annotated[
        Path | None, typer.Option(help="With --split: time this checkpoint too (ratio).")
    ] = None,
) -> None:
    """Sampling throughput (crystals per second at `steps` steps of SrTiO3, one core) ->
    sample.json / sample.md; or with --split, CSP of a split's compositions."""
    from autoperi_model._bench import bench_cells, bench_sample

    if split:
        cells = _split_cells(split, 1)[0]
        console.print_json(data=bench_cells(checkpoint, cells, split, out, baseline))
        return
    if sampler not in ("euler", "heun"):
        raise typer.BadParameter(f"unknown sampler {sampler!r}; use euler or heun")
    console.print_json(data=bench_sample(checkpoint, out, n, steps, sampler))
