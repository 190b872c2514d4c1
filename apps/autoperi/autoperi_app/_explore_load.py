"""What `autoperi explore` reads: a samples JSON (`autoperi sample`), a folder of CIF files, or a
loop report folder (`round-<k>.cif` selections, `round-<k>.json` scores, `journal.json`).

Every source becomes a list of `Entry` (a crystal, where it came from, and the energy, E_hull and
round when the source states them). Problems with the input raise `UserError` naming the path and
the problem; nothing here prints.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xtal import Crystal, CrystalError

from autoperi_app._errors import UserError

#: crystal properties read as the energy per atom (eV/atom) and the energy above hull
ENERGY_KEYS = ("energy_per_atom",)
HULL_KEYS = ("e_above_hull", "e_hull")
_CANDIDATE = re.compile(r"^candidate(\d+)_")
_CIF_SUFFIXES = (".cif", ".cif.gz")
_ROUND_CIF = re.compile(r"^round-(\d+)\.cif$")


@dataclass(frozen=True)
class Entry:
    """One crystal of the page: `key` names it within its source (file, block, sample id)."""

    key: str
    crystal: Crystal
    energy_per_atom: float | None = None
    e_above_hull: float | None = None
    round: int | None = None


def load_entries(path: Path) -> tuple[str, list[Entry]]:
    """(kind, entries) of `path`: kind is "samples", "cif file", "cif folder" or "loop report".

    Raises UserError for a missing path, an unreadable file, a file that holds no crystal, or a
    folder with no CIF file; CIF blocks that are not valid crystals are left out, but a source
    where none is valid is an error.
    """
    if not path.exists():
        raise UserError(f"{path} does not exist")
    if path.is_dir() and (path / "journal.json").is_file():
        kind, entries = "loop report", list(_loop_report(path))
    elif path.is_dir():
        kind, entries = "cif folder", list(_cif_folder(path))
    elif path.name.lower().endswith(_CIF_SUFFIXES):
        kind, entries = "cif file", _cif_file(path)
    else:
        kind, entries = "samples", _samples_json(path)
    if not entries:
        raise UserError(f"{path} holds no crystal ({kind})")
    return kind, entries


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{path} is not UTF-8 text (expected a samples JSON or CIF)") from None
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None


def _samples_json(path: Path) -> list[Entry]:
    """The crystals of a samples.json: {"crystals": [{id, lattice, frac_coords, ...}]}."""
    text = _read_text(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path} is not a samples JSON (`autoperi sample`): {exc}") from None
    items = data.get("crystals") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise UserError(f"{path} is not a samples JSON: no 'crystals' list")
    return [_sample_entry(path, i, item) for i, item in enumerate(items)]


def _sample_entry(path: Path, index: int, item: Any) -> Entry:
    try:
        props = dict(item.get("properties") or {})
        crystal = Crystal(
            item["lattice"], item["frac_coords"], item["atomic_numbers"], id=str(item.get("id", ""))
        )
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise UserError(f"{path}: crystal {index} is not a crystal record ({exc})") from None
    return _entry(str(item.get("id", index)), crystal, props)


def _entry(key: str, crystal: Crystal, props: dict[str, Any], **extra: Any) -> Entry:
    """An Entry with energy and E_hull taken from `props` (or `extra`) where present."""
    fields = {
        "energy_per_atom": _first_number(props, ENERGY_KEYS),
        "e_above_hull": _first_number(props, HULL_KEYS),
        "round": _int_or_none(props.get("round")),
    }
    fields.update({k: v for k, v in extra.items() if v is not None})
    return Entry(key, crystal, **fields)


def _first_number(props: dict[str, Any], keys: tuple[str, ...]) -> float | None:
    for key in keys:
        value = props.get(key)
        if isinstance(value, int | float) and value == value:  # not NaN
            return float(value)
    return None


def _int_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and value == value else None


def _cif_folder(path: Path) -> Iterator[Entry]:
    """Every valid block of every *.cif / *.cif.gz file of the folder (not recursive)."""
    files = sorted(p for p in path.iterdir() if p.name.lower().endswith(_CIF_SUFFIXES))
    if not files:
        raise UserError(f"{path} holds no .cif file (expected a CIF folder or a loop report)")
    for file in files:
        yield from _cif_file(file)


def _cif_file(file: Path) -> list[Entry]:
    """One entry per valid block, named by the file (and the block name when there are several)."""
    blocks = list(_cif_crystals(file))
    names = [file.name] if len(blocks) == 1 else [f"{file.name}:{key}" for key, _ in blocks]
    return [_entry(n, c, dict(c.properties)) for n, (_, c) in zip(names, blocks, strict=True)]


def _cif_crystals(file: Path) -> Iterator[tuple[str, Crystal]]:
    """(block name, crystal) of each valid block; UserError when the file is not CIF at all."""
    import autoperi_data

    try:
        records = list(autoperi_data.read_records(file))
    except CrystalError as exc:
        raise UserError(f"{file} is not a crystal file: {exc}") from None
    except OSError as exc:
        raise UserError(f"cannot read {file}: {exc.strerror or exc}") from None
    for record in records:
        if record.crystal is not None:
            yield record.key, record.crystal


def _loop_report(path: Path) -> Iterator[Entry]:
    """The selected crystals of each round (`round-<k>.cif`), with the energies and E_hull of
    the round's scores (`round-<k>.json`, written by loop_svc's report)."""
    rounds = sorted((int(m.group(1)), p) for p in path.iterdir() if (m := _ROUND_CIF.match(p.name)))
    for k, cif in rounds:
        scores = _round_scores(path / f"round-{k}.json")
        for key, crystal in _cif_crystals(cif):
            match = _CANDIDATE.match(key)
            index = int(match.group(1)) if match else None
            energy, hull = scores.get(index, (None, None))
            yield _entry(f"round {k} #{index if index is not None else key}", crystal,
                         dict(crystal.properties), energy_per_atom=energy, e_above_hull=hull,
                         round=k)  # fmt: skip


def _round_scores(path: Path) -> dict[int, tuple[float | None, float | None]]:
    """{candidate index: (energy per atom, E_hull)} of a round's selection ({} without the
    file); UserError for a file that is not one."""
    if not path.is_file():
        return {}
    try:
        rows = json.loads(_read_text(path))
        return {int(r["index"]): (r.get("energy_per_atom"), r.get("e_above_hull")) for r in rows}
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{path} is not a loop round's scores: {exc}") from None
