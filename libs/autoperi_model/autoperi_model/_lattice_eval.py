"""EMPNN's lattice tables (SCIENCE.md 4.5) for a task: lattice checkpoint on a dataset split.

Denoising: each test lattice L is deformed as L expm(A) (A symmetric Gaussian, the training
law) and restored; the table gives the mean absolute error of lengths (A) and angles (deg)
before and after, and the improvement (before - after, EMPNN Table 2). Reconstruction: the
lattice is restored from the cube of the crystal's volume; MAE of lengths and angles (EMPNN
Table 3), beside the cube's own MAE as the no-model baseline. Fractional coordinates and atoms
are the test crystal's throughout, so lengths and angles compare row by row.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from periodic import lattice_to_params
from torch import Tensor
from xtal import Crystal

from autoperi_model._batch import CrystalTable
from autoperi_model._generator import Generator
from autoperi_model._lattice import deform, volume_cube

EMPNN_RECONSTRUCTION_MP_20 = {"lengths": 0.174, "angles": 1.965}


def lattice_errors(pred: Tensor, true: Tensor) -> dict[str, float]:
    """Mean absolute errors of the lengths (A) and angles (deg) of lattices (B, 3, 3)."""
    pred_len, pred_ang = lattice_to_params(pred.double())
    true_len, true_ang = lattice_to_params(true.double())
    return {
        "lengths": float((pred_len - true_len).abs().mean()),
        "angles": float((pred_ang - true_ang).abs().mean()),
    }


def _restored(generator: Generator, crystals: list[Crystal], lattices: Tensor, **kw) -> Tensor:
    given = [c.replace(lattice=lat.numpy()) for c, lat in zip(crystals, lattices, strict=True)]
    return torch.as_tensor(np.stack([c.lattice for c in generator.restore_lattices(given, **kw)]))


def evaluate_lattice_tasks(
    generator: Generator,
    table: CrystalTable,
    deform_std: float,
    steps: int,
    sampler: str = "euler",
    seed: int = 0,
) -> dict[str, Any]:
    """Both EMPNN lattice tables over every crystal of `table`; errors as `lattice_errors`."""
    started = time.monotonic()
    true = table.lattice.double()
    crystals = [
        Crystal(a.lattice, a.frac_coords, a.atomic_numbers)
        for a in table.gather(torch.arange(len(table))).arrays()
    ]
    noisy = deform(true, deform_std, torch.Generator().manual_seed(seed))
    kw = {"steps": steps, "sampler": sampler, "seed": seed}
    denoised = _restored(generator, crystals, noisy, **kw)
    cube = volume_cube(true)
    rebuilt = _restored(generator, crystals, cube, **kw)
    before, after = lattice_errors(noisy, true), lattice_errors(denoised, true)
    return {
        "n_crystals": len(table),
        "deform_std": deform_std,
        "steps": steps,
        "sampler": sampler,
        "checkpoint": generator.checkpoint_id,
        "denoise_before": before,
        "denoise_after": after,
        "denoise_improvement": {k: before[k] - after[k] for k in before},
        "reconstruct_cube_baseline": lattice_errors(cube, true),
        "reconstruct": lattice_errors(rebuilt, true),
        "wall_s": time.monotonic() - started,
    }


def write_lattice_report(result: dict[str, Any], out: Path, name: str, command: str) -> Path:
    """`<out>/<name>.json` and `.md` (EMPNN's published reconstruction row beside ours)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps({**result, "command": command}, indent=1))
    row = "| {} | {:.3f} | {:.3f} |"
    cube_row = result["reconstruct_cube_baseline"].values()
    lines = [
        f"# Lattice denoising and reconstruction `{name}`",
        "",
        f"- `{command}`",
        f"- {result['n_crystals']} crystals, checkpoint {result['checkpoint']}, "
        f"{result['steps']} {result['sampler']} steps, A ~ symmetric Gaussian std "
        f"{result['deform_std']}, {result['wall_s']:.0f} s",
        "",
        "| denoising | lengths MAE (A) | angles MAE (deg) |",
        "|---|---|---|",
        row.format("deformed", *result["denoise_before"].values()),
        row.format("restored", *result["denoise_after"].values()),
        row.format("**improvement**", *result["denoise_improvement"].values()),
        "",
        "| reconstruction from a cubic cell | lengths MAE (A) | angles MAE (deg) |",
        "|---|---|---|",
        row.format("cube of the same volume (no model)", *cube_row),
        row.format("**restored**", *result["reconstruct"].values()),
        row.format("EMPNN, MP-20 (published)", *EMPNN_RECONSTRUCTION_MP_20.values()),
        "",
    ]
    path = out / f"{name}.md"
    path.write_text("\n".join(lines))
    return path
