"""The loop's journal: one JSON document per loop, rewritten atomically after every stage.

Layout of `<state_dir>/<loop_id>/journal.json`:
`{"format": 2, "loop_id", "request_id", "spec": {...}, "state", "created", "finished", "error",
"base_checkpoint_id", "current_checkpoint_id", "evaluations": {checkpoint_id: metrics},
"yields": {checkpoint_id: yield record (`_yield_eval`)}, "seed_commit_id" (yield objective: the
novelty reference), "rounds": [{"index", "stage", "done": [stage, ...], "branch",
"ingest_commit_id", "training_run_id", "checkpoint_id", counts, metrics, yields, "merged",
"decision", ...}]}`.

A stage is listed in `done` only after its results are in the round, so a resumed loop skips
exactly the finished stages; every stage is safe to redo (see `_engine`). Journals written before
a field existed are read with its default: a loaded spec is normalised through `LoopSpec`, so
such a loop resumes with an equal spec, and "yields" starts empty.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loop_svc._spec import LoopSpec

FORMAT = 2  # 2: held-out data from the ingest, request_id, cancel
JOURNAL_FILE = "journal.json"
#: Stages of a round, in order (loop.v1.RoundStage without the prefix).
STAGES = ("sampling", "scoring", "selecting", "ingesting", "training", "evaluating", "merging")
#: States of a loop that has ended (a failed or cancelled one can be resumed).
TERMINAL = ("succeeded", "failed", "cancelled")


class JournalError(ValueError):
    """A journal that cannot be used (unknown format, or a resume with a different spec)."""


@dataclass
class Journal:
    """The state of one loop, saved at `path` (JSON, atomic replace on every `save`).

    `on_save(data)`, when set, is called after each save, in the saving thread (the loop service
    takes its snapshots and events there)."""

    path: Path
    data: dict[str, Any]
    on_save: Callable[[dict[str, Any]], None] | None = field(default=None, compare=False)

    @classmethod
    def open(cls, state_dir: Path, loop_id: str, spec: dict[str, Any]) -> Journal:
        """The loop's journal: loaded when it exists (spec must be equal), else a new one."""
        path = Path(state_dir) / loop_id / JOURNAL_FILE
        if path.exists():
            journal = cls.load(path)
            if journal.data["spec"] != spec:
                raise JournalError(f"loop {loop_id} was started with a different spec")
            return journal
        data = {
            "format": FORMAT, "loop_id": loop_id, "spec": spec, "state": "pending",
            "created": time.time(), "finished": None, "error": "", "base_checkpoint_id": "",
            "current_checkpoint_id": "", "evaluations": {}, "yields": {}, "rounds": [],
        }  # fmt: skip
        journal = cls(path, data)
        journal.save()
        return journal

    @classmethod
    def load(cls, path: Path) -> Journal:
        """The journal saved at `path` (JournalError for an unknown format)."""
        data = json.loads(Path(path).read_text())
        if data.get("format") != FORMAT:
            raise JournalError(f"{path}: unknown journal format {data.get('format')!r}")
        data["spec"] = LoopSpec.from_json(data["spec"]).to_json()  # new fields: defaults
        data.setdefault("yields", {})
        return cls(Path(path), data)

    @property
    def loop_id(self) -> str:
        return self.data["loop_id"]

    @property
    def directory(self) -> Path:
        """The loop's folder (journal, candidates of each round)."""
        return self.path.parent

    def round(self, index: int) -> dict[str, Any]:
        """Round `index` (from 1), created empty on first use."""
        rounds = self.data["rounds"]
        while len(rounds) < index:
            rounds.append({"index": len(rounds) + 1, "stage": "pending", "done": []})
        return rounds[index - 1]

    def save(self) -> None:
        """Write the journal (to a temporary file, fsync, then rename over the old one)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("w") as handle:
            json.dump(self.data, handle, indent=1, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)
        if self.on_save is not None:
            self.on_save(self.data)
