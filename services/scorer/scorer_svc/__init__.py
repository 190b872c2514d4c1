"""The scorer service: CHGNet energies, forces, stress and relaxations, validity, symmetry and
novelty for batches of crystals, over gRPC.

`create_server(settings, deps)` builds the server; `ScorerCore` is its logic without gRPC (CHGNet
runs in worker processes of a `PotentialPool`); `scorer_svc.client.score` calls a running
scorer; `scorer_svc.main.main` runs it.
"""

from svc_kit import lazy_exports

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
    "score_in_process",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "CoreLimits": "._core",
        "RunStats": "._core",
        "ScorerCore": "._core",
        "Problem": "._model",
        "Reference": "._model",
        "ScoreOptions": "._model",
        "ScorerInfo": "._model",
        "Scores": "._model",
        "NoveltyIndex": "._novelty",
        "NoveltyReferences": "._novelty",
        "PoolLimits": "._pool",
        "PotentialPool": "._pool",
        "SERVICE_NAME": "._server",
        "ScorerDeps": "._server",
        "build_core": "._server",
        "create_server": "._server",
        "score_in_process": "._server",
        "ScorerSettings": "._settings",
    },
)
