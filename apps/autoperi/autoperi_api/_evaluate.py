"""`evaluate`: the CDVAE/DiffCSP protocol on crystals, against a benchmark split."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from autoperi_eval import EvalReport
from autoperi_eval import evaluate as _evaluate
from xtal import Crystal

__all__ = ["EvalReport", "evaluate"]


def evaluate(
    crystals: Sequence[Crystal],
    reference: str,
    task: str = "dng",
    name: str = "notebook",
    out_dir: str | Path | None = None,
) -> EvalReport:
    """The report of `crystals` against `reference` (`dataset:split[start:stop]`): task "csp"
    (match rate and RMSE; each crystal names its row as `properties["gt_index"]`, see
    `Model.predict_split`) or "dng" (validity, coverage, property distances, ...). With `out_dir`
    the report's markdown, JSON, CSV and figures are written there too."""
    return _evaluate(list(crystals), reference, task, name, out_dir=out_dir)
