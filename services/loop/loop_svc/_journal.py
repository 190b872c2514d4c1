"""The loop's journal: one JSON document per loop, rewritten atomically after every stage.

Layout of `<state_dir>/<loop_id>/journal.json`:
`{"format": 1, "loop_id", "spec": {...}, "state", "created", "finished", "error",
"base_checkpoint_id", "current_checkpoint_id", "evaluations": {checkpoint_id: metrics},
"rounds": [{"index", "stage", "done": [stage, ...], "branch", "ingest_commit_id",
"training_run_id", "checkpoint_id", counts, metrics, "merged", "decision", ...}]}`.

A stage is listed in `done` only after its results are in the round, so a resumed loop skips
exactly the finished stages; every stage is safe to redo (see `_engine`).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORMAT = 1
JOURNAL_FILE = "journal.json"
#: Stages of a round, in order (loop.v1.RoundStage without the prefix).
STAGES = ("sampling", "scoring", "selecting", "ingesting", "training", "evaluating", "merging")


class JournalError(ValueError):
    """A journal that cannot be used (unknown format, or a resume with a different spec)."""


@dataclass
class Journal:
    """The state of one loop, saved at `path` (JSON, atomic replace on every `save`)."""

    path: Path
    data: dict[str, Any]

    @classmethod
    def open(cls, state_dir: Path, loop_id: str, spec: dict[str, Any]) -> Journal:
        """The loop's journal: loaded when it exists (spec must be equal), else a new one."""
        path = Path(state_dir) / loop_id / JOURNAL_FILE
        if path.exists():
            data = json.loads(path.read_text())
            if data.get("format") != FORMAT:
                raise JournalError(f"{path}: unknown journal format {data.get('format')!r}")
            if data["spec"] != spec:
                raise JournalError(f"loop {loop_id} was started with a different spec")
            return cls(path, data)
        data = {
            "format": FORMAT, "loop_id": loop_id, "spec": spec, "state": "pending",
            "created": time.time(), "finished": None, "error": "", "base_checkpoint_id": "",
            "current_checkpoint_id": "", "evaluations": {}, "rounds": [],
        }  # fmt: skip
        journal = cls(path, data)
        journal.save()
        return journal

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
