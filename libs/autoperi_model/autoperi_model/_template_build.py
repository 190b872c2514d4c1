"""Building a template model: the library of a training pool, labelled candidates, the ranker.

Labels come from a `Matcher` the caller injects (the evaluation protocol's StructureMatcher, so
this library does not depend on the evaluator): for each candidate, whether the substituted
template matches the query crystal. Library crystals are queried against the rest of the library
(leave one out), so the ranker learns from the training data alone; a held-out set is queried
against the whole library to measure it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import yaml
from autoperi_data import CrystalArrays
from pydantic import BaseModel, ConfigDict, Field

from autoperi_model._config import DataConfig
from autoperi_model._ranking import TemplateRanker, fit_ranker
from autoperi_model._symmetry_data import SymmetricCrystals
from autoperi_model._templates import (
    FEATURES,
    Candidate,
    TemplateLibrary,
    prototype_ids,
    substitution_scores,
)

log = logging.getLogger(__name__)
#: (prediction, target) pairs -> normalised RMS per pair, NaN where they do not match
Matcher = Callable[[Sequence[tuple[CrystalArrays, CrystalArrays]]], np.ndarray]


def library_from(crystals: SymmetricCrystals) -> TemplateLibrary:
    """The template library of idealised crystals: prototypes and learned substitution scores."""
    count = len(crystals)
    prototypes = prototype_ids([crystals.prototype_signature(i) for i in range(count)])
    sites = [crystals.site_signatures(i) for i in range(count)]
    return TemplateLibrary(crystals, prototypes, substitution_scores(prototypes, sites))


@dataclass(frozen=True)
class LabelledQuery:
    """One query's candidates with features (M, F), match labels (M,) and RMS (M,; NaN: none)."""

    candidates: list[Candidate]
    features: np.ndarray
    labels: np.ndarray
    rms: np.ndarray


def label_queries(
    library: TemplateLibrary,
    queries: Sequence[CrystalArrays],
    matcher: Matcher,
    exclude: Sequence[int | None] | None = None,
) -> list[LabelledQuery]:
    """Candidates of each query cell, labelled by matching their substitutions to the query
    crystal; `exclude[q]` is left out of query q's candidates (leave one out)."""
    exclude = exclude if exclude is not None else [None] * len(queries)
    found = [
        library.candidates(q.atomic_numbers, exclude=e)
        for q, e in zip(queries, exclude, strict=True)
    ]
    pairs = [
        (library.substituted(c.index, c.mapping), q)
        for q, cs in zip(queries, found, strict=True)
        for c in cs
    ]
    rms = np.asarray(matcher(pairs), dtype=float)
    out, start = [], 0
    for cands in found:
        part = rms[start : start + len(cands)]
        start += len(cands)
        features = np.stack([c.features for c in cands]) if cands else np.zeros((0, 0))
        out.append(LabelledQuery(cands, features, np.isfinite(part).astype(float), part))
    return out


def top1(queries: Sequence[LabelledQuery], scores: Sequence[np.ndarray]) -> dict[str, float]:
    """Match rate and RMSE of the best-scored candidate of every query (queries without
    candidates count as unmatched), and the share with any matched candidate (the ceiling)."""
    hits, rmse = [], []
    for q, s in zip(queries, scores, strict=True):
        if not len(q.candidates):
            hits.append(False)
            continue
        best = int(np.argmax(s))
        hits.append(bool(q.labels[best]))
        if q.labels[best]:
            rmse.append(q.rms[best])
    return {
        "match_rate": float(np.mean(hits)),
        "rmse": float(np.mean(rmse)) if rmse else float("nan"),
        "ceiling": float(np.mean([q.labels.any() if len(q.labels) else False for q in queries])),
    }


def train_ranker(
    labelled: Sequence[LabelledQuery], hidden: int = 32, epochs: int = 40, seed: int = 0
) -> TemplateRanker:
    """A listwise ranker on the queries that have candidates."""
    usable = [q for q in labelled if len(q.candidates)]
    return fit_ranker(
        [q.features for q in usable], [q.labels for q in usable], hidden, epochs, seed
    )


def mendeleev_scores(query: LabelledQuery) -> np.ndarray:
    """The no-learning lookup's order: least Mendeleev cost first, then library order."""
    if not query.candidates:
        return np.zeros(0)
    return -query.features[:, FEATURES.index("mendeleev_rank")]


def ranker_scores(ranker: TemplateRanker, query: LabelledQuery) -> np.ndarray:
    """The ranker's logits of a query's candidates."""
    return ranker.score(query.features) if len(query.candidates) else np.zeros(0)


class TemplatesConfig(BaseModel):
    """How a template checkpoint is built (`autoperi templates build`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    data: DataConfig = DataConfig()
    ranker: Literal["learned", "mendeleev"] = "learned"
    queries: int = Field(8000, ge=1, description="Library crystals queried leave-one-out.")
    hidden: int = Field(32, gt=0)
    epochs: int = Field(40, gt=0)
    seed: int = 0
    flow: str | None = Field(None, description="A symmetric flow checkpoint to attach (flow/).")
    start_time: float = Field(
        0.0, ge=0.0, lt=1.0, description="Where on the path to a template the flow starts."
    )

    @classmethod
    def from_yaml(cls, path: str | Path) -> TemplatesConfig:
        """Read a YAML file; unknown keys are errors."""
        return cls.model_validate(yaml.safe_load(Path(path).read_text()) or {})


@dataclass(frozen=True)
class BuiltTemplates:
    """A built template model and what was measured while building it."""

    library: TemplateLibrary
    ranker: TemplateRanker | None
    metrics: dict[str, dict[str, float]]


def build_templates(
    config: TemplatesConfig,
    pool: SymmetricCrystals,
    held_out: Sequence[CrystalArrays],
    matcher: Matcher,
) -> BuiltTemplates:
    """The library of `pool`, a ranker trained on `config.queries` library crystals queried
    leave one out (none for the Mendeleev lookup), and the top-1 match rate of both orders on
    the held-out crystals (queried against the whole library)."""
    library = library_from(pool)
    held = label_queries(library, held_out, matcher)
    metrics = {"held_out_mendeleev": top1(held, [mendeleev_scores(q) for q in held])}
    ranker = None
    if config.ranker == "learned":
        chosen = np.random.default_rng(config.seed).permutation(len(pool))[: config.queries]
        queries = [
            CrystalArrays(pool.lattice[i].numpy(), pool.numbers_of(i),
                          pool.frac_coords[pool.atoms_of(i)].numpy())
            for i in chosen.tolist()
        ]  # fmt: skip
        log.info("labelling %d leave-one-out queries", len(queries))
        labelled = label_queries(library, queries, matcher, exclude=chosen.tolist())
        metrics["leave_one_out_mendeleev"] = top1(labelled, [mendeleev_scores(q) for q in labelled])
        ranker = train_ranker(labelled, config.hidden, config.epochs, config.seed)
        metrics["held_out_learned"] = top1(held, [ranker_scores(ranker, q) for q in held])
    return BuiltTemplates(library, ranker, metrics)
