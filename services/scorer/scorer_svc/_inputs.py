"""Crystals of the files `autoperi score` reads: CIF / CSV files and samples.json files.

samples.json is the sample format of `autoperi sample` (`xtal.write_samples`):
{"crystals": [{"id", "lattice" (3, 3), "frac_coords" (n, 3), "atomic_numbers" (n,), ...}]}.
"""

import json
from pathlib import Path

from autoperi_data import read_records
from xtal import Crystal, CrystalError, Provenance


def read_inputs(paths: list[Path]) -> tuple[list[Crystal], list[str]]:
    """(crystals of all files in order, one line per record that could not be read)."""
    crystals: list[Crystal] = []
    problems: list[str] = []
    for path in paths:
        if path.suffix.lower() == ".json":
            crystals.extend(_samples(path))
            continue
        for record in read_records(path):
            if record.crystal is None:
                problems.append(f"{path.name} {record.key}: {record.error}")
            else:
                crystals.append(record.crystal)
    return crystals, problems


def _samples(path: Path) -> list[Crystal]:
    try:
        data = json.loads(path.read_text())
        entries = data["crystals"]
        return [
            Crystal(
                e["lattice"],
                e["frac_coords"],
                e["atomic_numbers"],
                id=str(e.get("id", i)),
                provenance=Provenance(source=path.name, record=str(e.get("id", i))),
            )
            for i, e in enumerate(entries)
        ]
    except (OSError, ValueError, KeyError, TypeError, CrystalError) as exc:
        raise ValueError(f"{path} is not a samples.json file: {exc}") from None
