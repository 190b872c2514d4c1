"""`create_server(settings, deps)`: the scorer gRPC server over a CHGNet worker pool."""

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import grpc
from autoperi.scorer.v1 import scorer_pb2, scorer_pb2_grpc
from storage import InvalidKey, RefNotFound, RepositoryNotFound, VersionStore, open_version_store
from svc_kit import ServiceServer, build_server
from xtal import Crystal

from scorer_svc._core import ScorerCore
from scorer_svc._hull import HullReference
from scorer_svc._model import ScoreOptions, Scores
from scorer_svc._novelty import NoveltyReferences
from scorer_svc._pool import PotentialPool
from scorer_svc._servicer import ScorerServicer
from scorer_svc._settings import ScorerSettings

SERVICE_NAME = scorer_pb2.DESCRIPTOR.services_by_name["ScorerService"].full_name
ERROR_MAP = {
    InvalidKey: grpc.StatusCode.INVALID_ARGUMENT,
    RepositoryNotFound: grpc.StatusCode.NOT_FOUND,
    RefNotFound: grpc.StatusCode.NOT_FOUND,
}


@dataclass(frozen=True)
class ScorerDeps:
    """What the scorer needs from outside: the dataset store novelty is checked against
    (None: novelty requests get INVALID_ARGUMENT)."""

    versions: VersionStore | None

    @classmethod
    def from_settings(cls, settings: ScorerSettings) -> "ScorerDeps":
        """Open the version store named by `settings.storage_uri`."""
        return cls(versions=open_version_store(settings.storage_uri))


def build_core(settings: ScorerSettings, deps: ScorerDeps) -> ScorerCore:
    """The scorer core for `settings` (its workers start on first use or with `pool.warm()`);
    ValueError for an unreadable hull reference file."""
    references = None
    if deps.versions is not None:
        references = NoveltyReferences(deps.versions, settings.novelty_cache_commits)
    hull = None
    if settings.hull_entries:
        hull = HullReference(settings.hull_entries, settings.hull_source)
    pool = PotentialPool(settings.pool_limits())
    return ScorerCore(pool, references, settings.core_limits(), hull)


def create_server(settings: ScorerSettings, deps: ScorerDeps) -> ServiceServer:
    """Build (not start) the scorer server; `server.core` is its ScorerCore (close it after
    stopping the server). With `settings.warm_start` the CHGNet workers start loading now, in
    the background; requests wait for them."""
    core = build_core(settings, deps)
    server = build_server(
        settings,
        [(scorer_pb2_grpc.add_ScorerServiceServicer_to_server, ScorerServicer(core))],
        [SERVICE_NAME],
        error_map=ERROR_MAP,
    )
    if settings.warm_start:
        threading.Thread(target=core.pool.warm, name="chgnet-warm", daemon=True).start()
    server.core = core  # type: ignore[attr-defined]
    return server


def score_in_process(
    crystals: Sequence[Crystal],
    options: ScoreOptions | None = None,
    settings: ScorerSettings | None = None,
) -> list[Scores]:
    """Scores of `crystals` (in order) from a scorer core in this process, its CHGNet workers
    started and stopped here; a novelty reference is read from `settings.storage_uri`. Raises
    the service's errors (svc_kit.ServiceError) for a refused request."""
    options = options or ScoreOptions()
    settings = settings or ScorerSettings(warm_start=False)
    use_store = options.novelty_reference is not None
    core = build_core(
        settings, ScorerDeps.from_settings(settings) if use_store else ScorerDeps(None)
    )
    results: list[Scores] = []
    try:
        for start in range(0, len(crystals), settings.max_batch_size):
            _, batches = core.score(crystals[start : start + settings.max_batch_size], options)
            for result in (r for batch in batches for r in batch):
                result.index += start
                results.append(result)
    finally:
        core.close()
    return sorted(results, key=lambda r: r.index)
