"""The scorer service: CHGNet energies, forces, stress and relaxations, validity, symmetry and
novelty for batches of crystals, over gRPC.

`create_server(settings, deps)` builds the server; `ScorerCore` is its logic without gRPC (CHGNet
runs in worker processes of a `PotentialPool`); `scorer_svc.client.score` calls a running
scorer; `scorer_svc.main.main` runs it.
"""

from scorer_svc._core import CoreLimits, RunStats, ScorerCore
from scorer_svc._model import Problem, Reference, ScoreOptions, ScorerInfo, Scores
from scorer_svc._novelty import NoveltyIndex, NoveltyReferences
from scorer_svc._pool import PoolLimits, PotentialPool
from scorer_svc._server import SERVICE_NAME, ScorerDeps, build_core, create_server
from scorer_svc._settings import ScorerSettings

__all__ = [
    "SERVICE_NAME",
    "CoreLimits",
    "NoveltyIndex",
    "NoveltyReferences",
    "PoolLimits",
    "PotentialPool",
    "Problem",
    "Reference",
    "RunStats",
    "ScoreOptions",
    "ScorerCore",
    "ScorerDeps",
    "ScorerInfo",
    "ScorerSettings",
    "Scores",
    "build_core",
    "create_server",
]
