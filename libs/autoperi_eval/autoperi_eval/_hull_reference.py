"""Hull reference files: a crystal set's CHGNet energies under the evaluation's protocol.

A hull reference is one JSON document, the same for `autoperi eval --hull`, the scorer's E_hull
and formation energy (`scorer_svc.HullReference`) and the loop:

    {"format": "autoperi-hull-reference-v1",
     "protocol": {"potential": ..., "relax": {"optimizer": "FIRE", "cell_filter": ...,
                  "steps": 100, "fmax": 0.1}},
     "sources": ["mp_20/train@<commit>", ...],
     "results": [{"crystal_hash", "formula", "energy_per_atom", "energy_per_atom_single_point",
                  "relax_steps"}, ...],
     "elemental_references": [{"element", "structure", "energy_per_atom", ...}, ...],
     "elements_without_reference": [...]}

`energy_per_atom` is the energy after the bounded relaxation (the relaxed hull's entry),
`energy_per_atom_single_point` the energy of the structure as stored (the single-point hull's).
A crystal CHGNet cannot score has `"error"` instead of energies. A partial reference
(`"complete": false`, what `cached_rows` finds of an interrupted build) is refused as a hull and
only seeds a resumed build (`seed_relaxations`).

`elemental_references` (optional) are the standard crystals of the elements no result row is a
crystal of, scored under the same protocol (`_elemental`): they serve formation energies only.
`elements_without_reference` names the elements that have neither, whose compounds have no
formation energy.
"""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from autoperi_data import CrystalArrays
from pymatgen.core import Composition, Element

from ._cache import Cache
from ._chgnet import RelaxSettings, Scorer, relax_namespace
from ._elemental import elemental_energies
from ._parallel import ProgressFn
from ._structs import structure_key

FORMAT = "autoperi-hull-reference-v1"
UNSCORABLE = "not scorable by the potential"


def read_json_document(path: str | Path) -> Any:
    """The JSON value of `path`, gunzipped first when the name ends in `.gz`."""
    path = Path(path)
    data = path.read_bytes()
    return json.loads(gzip.decompress(data) if path.name.endswith(".gz") else data)


def write_json_document(value: Any, path: str | Path) -> None:
    """Write `value` as JSON to `path`, gzipped (reproducibly: no timestamp) for `.gz` names."""
    path = Path(path)
    data = json.dumps(value).encode()
    path.write_bytes(gzip.compress(data, mtime=0) if path.name.endswith(".gz") else data)


def potential_protocol(relax: RelaxSettings) -> dict[str, Any]:
    """The potential and relaxation a reference's energies come from (compared before use)."""
    import chgnet
    from autoperi_potential import MODEL_NAME

    return {
        "potential": f"CHGNet {MODEL_NAME} (chgnet {chgnet.__version__})",
        "relax": {
            "optimizer": "FIRE",
            "cell_filter": "FrechetCellFilter",
            "steps": relax.steps,
            "fmax": relax.fmax,
        },
    }


def reference_rows(
    crystals: Sequence[CrystalArrays],
    hashes: Sequence[str],
    *,
    relax: RelaxSettings | None = None,
    cache: Cache | None = None,
    n_workers: int | None = None,
    progress: ProgressFn | None = None,
) -> list[dict[str, Any]]:
    """One result row per crystal (in order): single-point and relaxed CHGNet energies per atom,
    computed in CHGNet worker processes and cached in `cache` (default: memory only); `relax`
    defaults to the evaluation's bounded relaxation."""
    relax = relax or RelaxSettings()
    scorer = Scorer(cache or Cache(None), n_workers)
    try:
        e_sp, _ = scorer.single_point(crystals, "reference single points", progress)
        e_relaxed, steps = scorer.relax(crystals, relax, "reference relaxations", progress)
    finally:
        scorer.close()
    rows = []
    for i, crystal in enumerate(crystals):
        if math.isfinite(e_sp[i]) and math.isfinite(e_relaxed[i]):
            rows.append(_row(crystal, hashes[i], e_sp[i], e_relaxed[i], steps[i]))
        else:
            rows.append(
                {"crystal_hash": hashes[i], "formula": _formula(crystal), "error": UNSCORABLE}
            )
    return rows


def cached_rows(
    crystals: Sequence[CrystalArrays],
    hashes: Sequence[str],
    cache: Cache,
    relax: RelaxSettings | None = None,
) -> list[dict[str, Any]]:
    """The rows of the crystals whose bounded relaxation `cache` already holds, computing
    nothing (a partial reference; the single point is the relaxation's first energy)."""
    relax = relax or RelaxSettings()
    keys = [structure_key(c) for c in crystals]
    found = cache.get_many(relax_namespace(relax), keys)
    return [
        _row(crystal, ident, v["e_initial"], v["e_final"], v["steps"])
        for crystal, ident, key in zip(crystals, hashes, keys, strict=True)
        if (v := found.get(key)) is not None and np.isfinite(v["e_final"])
    ]


def seed_relaxations(
    crystals: Sequence[CrystalArrays],
    hashes: Sequence[str],
    rows: Sequence[dict[str, Any]],
    cache: Cache,
    relax: RelaxSettings | None = None,
) -> int:
    """Put the relaxations that `rows` (of a reference with this protocol) hold for these
    crystals, matched by crystal hash, into `cache`, so that a build skips them; how many."""
    relax = relax or RelaxSettings()
    by_hash = {r["crystal_hash"]: r for r in rows if "error" not in r}
    items = {}
    for crystal, ident in zip(crystals, hashes, strict=True):
        if (row := by_hash.get(ident)) is not None:
            items[structure_key(crystal)] = {
                "e_initial": np.array(float(row["energy_per_atom_single_point"])),
                "e_final": np.array(float(row["energy_per_atom"])),
                "steps": np.array(int(row["relax_steps"])),
            }
    cache.put_many(relax_namespace(relax), items)
    return len(items)


def _row(crystal: CrystalArrays, ident: str, e_sp, e_relaxed, steps) -> dict[str, Any]:
    return {
        "crystal_hash": ident,
        "formula": _formula(crystal),
        "energy_per_atom": float(e_relaxed),
        "energy_per_atom_single_point": float(e_sp),
        "relax_steps": int(steps),
    }


def _formula(crystal: CrystalArrays) -> str:
    values, counts = np.unique(crystal.atomic_numbers, return_counts=True)
    counts_of = {Element.from_Z(int(z)): int(n) for z, n in zip(values, counts, strict=True)}
    return Composition(counts_of).formula


def hull_document(
    rows: Sequence[dict[str, Any]],
    protocol: dict[str, Any],
    sources: Sequence[str],
    expected: int | None = None,
    elemental: tuple[Sequence[dict[str, Any]], Sequence[str]] | None = None,
) -> dict[str, Any]:
    """The JSON document of a hull reference; with `expected` (the sources' crystal count) and
    fewer rows, a partial one that `HullReference.read` refuses (resume it with
    `seed_relaxations`); `elemental`: (elemental reference rows, elements without one), as
    `elemental_reference_rows` gives them."""
    complete = expected is None or len(rows) == expected
    document = {"format": FORMAT, "protocol": protocol, "sources": list(sources),
                "complete": complete, "expected_crystals": expected or len(rows),
                "results": list(rows)}  # fmt: skip
    if elemental is not None:
        document["elemental_references"] = list(elemental[0])
        document["elements_without_reference"] = list(elemental[1])
    return document


@dataclass(frozen=True)
class HullReference:
    """A hull reference file's scored entries: compositions, relaxed and single-point energies
    per atom (aligned), where they came from, and the protocol that produced them."""

    compositions: tuple[Composition, ...]
    e_relaxed: np.ndarray
    e_single_point: np.ndarray
    sources: tuple[str, ...]
    protocol: dict[str, Any]
    elemental: dict[str, float] = field(default_factory=dict)  # symbol -> relaxed eV/atom

    @classmethod
    def read(cls, path: str | Path) -> HullReference:
        """Read a hull reference file; ValueError naming the problem when it is not one."""
        try:
            document = read_json_document(path)
            if document.get("format") != FORMAT:
                raise ValueError(f"format is not {FORMAT}")
            if not document.get("complete", True):
                raise ValueError(
                    f"it is partial ({len(document['results'])} of "
                    f"{document['expected_crystals']} crystals): finish it with `autoperi data "
                    f"hull --resume-from`"
                )
            rows = [r for r in document["results"] if "error" not in r]
            comps = tuple(Composition(r["formula"]) for r in rows)
            relaxed = np.array([float(r["energy_per_atom"]) for r in rows])
            single = np.array([float(r["energy_per_atom_single_point"]) for r in rows])
            elemental = elemental_energies(document)
        except (OSError, EOFError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"{Path(path).name} is not a hull reference file: {exc}") from None
        if not rows:
            raise ValueError(f"{Path(path).name} holds no scored crystal")
        return cls(
            comps, relaxed, single, tuple(document["sources"]), document["protocol"], elemental
        )

    def check_protocol(self, relax: RelaxSettings) -> None:
        """ValueError unless the file's energies come from this potential and relaxation."""
        expected = potential_protocol(relax)
        if self.protocol != expected:
            raise ValueError(
                f"the hull reference was scored with {self.protocol}, this evaluation uses "
                f"{expected}"
            )
