"""Checkpoint kinds: which loader builds the `Generator` of a checkpoint directory.

A checkpoint's kind is its manifest's `kind` field, or `<task>/<process>` of its config for
manifests that predate the field (e.g. `csp/flow`, `csp/diffusion`, `dng/flow`, `lattice/flow`).
Each kind is registered once with the tasks its generators serve; `load_generator` looks the kind
up, refuses a checkpoint whose tasks or process the caller cannot use before loading any weights,
and calls the loader. A new kind of model adds a module that calls `register_kind` at import
(imported by `autoperi_model/__init__.py`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from autoperi_model._generator import Generator

MANIFEST_FILE = "manifest.json"
#: what each task means, for messages
TASKS = {
    "csp": "predicts structures for given compositions",
    "dng": "generates crystals de novo",
    "lattice": "restores the lattices of given crystals",
}
Loader = Callable[[Path], "Generator"]


class CheckpointMismatch(ValueError):
    """A checkpoint of a kind, task or process the caller cannot use; the message says which."""


@dataclass(frozen=True)
class Kind:
    """A registered checkpoint kind: its name, the tasks it serves and its loader."""

    name: str
    tasks: frozenset[str]
    loader: Loader

    @property
    def process(self) -> str:
        """The generative process of the kind: the part of its name after '/'."""
        return self.name.partition("/")[2]


_KINDS: dict[str, Kind] = {}


def register_kind(name: str, loader: Loader, tasks: Iterable[str]) -> None:
    """Register the loader of checkpoint kind `name` ("<task>/<process>") and the tasks (csp,
    dng, lattice or new ones) its generators serve; registering a name twice is an error."""
    if name in _KINDS:
        raise ValueError(f"checkpoint kind {name!r} is already registered")
    _KINDS[name] = Kind(name, frozenset(tasks), loader)


def registered_kinds() -> dict[str, Kind]:
    """The registered kinds by name."""
    return dict(_KINDS)


def manifest_kind(manifest: dict[str, Any]) -> str:
    """The kind of a manifest (its JSON object): `kind`, else `<task>/<process>` of its config
    (defaults csp and flow, as the config's)."""
    if manifest.get("kind"):
        return str(manifest["kind"])
    config = manifest.get("config") or {}
    return f"{config.get('task', 'csp')}/{config.get('process', 'flow')}"


def checkpoint_kind(directory: str | Path) -> str:
    """The kind of the checkpoint directory; FileNotFoundError when it is not one."""
    path = Path(directory) / MANIFEST_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{directory} is not a checkpoint directory (no {MANIFEST_FILE})")
    return manifest_kind(json.loads(path.read_text()))


def check_checkpoint(
    directory: str | Path,
    tasks: Iterable[str] | None = None,
    processes: Iterable[str] | None = None,
) -> Kind:
    """The registered kind of a checkpoint directory, read from its manifest alone (no weights).
    With `tasks`, the checkpoint must serve at least one of them; with `processes`, its process
    must be one of them: otherwise CheckpointMismatch says what the checkpoint is and what was
    asked (also for a kind nobody registered)."""
    name = checkpoint_kind(directory)
    kind = _KINDS.get(name)
    if kind is None:
        known = ", ".join(sorted(_KINDS))
        raise CheckpointMismatch(f"{directory} is a {name} checkpoint, not a known kind ({known})")
    _check(directory, kind, tasks, processes)
    return kind


def load_generator(
    directory: str | Path,
    tasks: Iterable[str] | None = None,
    processes: Iterable[str] | None = None,
) -> Generator:
    """The `Generator` of a checkpoint directory, refused as by `check_checkpoint` before any
    weights load."""
    return check_checkpoint(directory, tasks, processes).loader(Path(directory))


def _check(directory, kind: Kind, tasks, processes) -> None:
    wanted = set(tasks or ())
    if wanted and not wanted & kind.tasks:
        does = "; ".join(f"{t}: {TASKS.get(t, t)}" for t in sorted(kind.tasks))
        asked = " or ".join(sorted(wanted))
        raise CheckpointMismatch(
            f"{directory} is a {kind.name} checkpoint ({does}); it cannot serve {asked}: "
            f"give a checkpoint of task {asked}"
        )
    allowed = set(processes or ())
    if allowed and kind.process not in allowed:
        asked = " or ".join(sorted(allowed))
        raise CheckpointMismatch(
            f"{directory} is a {kind.name} checkpoint (process {kind.process}); this needs "
            f"process {asked}"
        )
