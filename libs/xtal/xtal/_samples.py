"""The sample directory format: one CIF per crystal and `samples.json`, what `autoperi sample`
and `autoperi screen` write and `autoperi eval` / `autoperi score` read."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from xtal._crystal import Crystal


def write_samples(
    crystals: Sequence[Crystal],
    requested: Sequence[str],
    out: Path,
    checkpoint_id: str,
    extra: Sequence[dict[str, float]] | None = None,
) -> Path:
    """CIF files `<i>_<formula>.cif` and `samples.json` in `out`; the path of samples.json.

    samples.json: {"checkpoint", "crystals": [{id, file, composition (requested[i]), lattice,
    frac_coords, atomic_numbers, properties}]}; properties are the crystal's own plus
    `extra[i]` (e.g. a ground-truth row `gt_index`).
    """
    out.mkdir(parents=True, exist_ok=True)
    records = []
    for i, (crystal, text) in enumerate(zip(crystals, requested, strict=True)):
        name = f"{i:05d}_{crystal.formula}.cif"
        (out / name).write_text(crystal.to_cif())
        records.append(
            {
                "id": str(i),
                "file": name,
                "composition": text,
                "lattice": crystal.lattice.tolist(),
                "frac_coords": crystal.frac_coords.tolist(),
                "atomic_numbers": crystal.atomic_numbers.tolist(),
                "properties": {**crystal.properties, **(extra[i] if extra else {})},
            }
        )
    path = out / "samples.json"
    path.write_text(json.dumps({"checkpoint": checkpoint_id, "crystals": records}, indent=1))
    return path
