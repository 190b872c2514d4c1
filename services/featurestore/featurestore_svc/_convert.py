"""Proto <-> domain conversions of the featurestore (the only module reading its messages)."""

import math
from typing import Any

from autoperi.common.v1 import common_pb2
from autoperi.featurestore.v1 import featurestore_pb2 as pb
from google.protobuf.timestamp_pb2 import Timestamp
from svc_kit import InvalidInput

from featurestore_svc._core import ArtifactState, FeatureSetState

_KINDS = {
    pb.FEATURE_KIND_TENSOR_SHARDS: "tensor_shards",
    pb.FEATURE_KIND_STATISTICS: "statistics",
    pb.FEATURE_KIND_STRUCTURE_FINGERPRINTS: "structure_fingerprints",
    pb.FEATURE_KIND_COMPOSITION_FINGERPRINTS: "composition_fingerprints",
    pb.FEATURE_KIND_REFERENCE_ENERGIES: "reference_energies",
    pb.FEATURE_KIND_EMBEDDINGS: "embeddings",
    pb.FEATURE_KIND_GRAPHS: "graphs",
}
_KIND_ENUMS = {name: value for value, name in _KINDS.items()}
_STATES = {
    "missing": pb.BUILD_STATE_MISSING,
    "queued": pb.BUILD_STATE_QUEUED,
    "running": pb.BUILD_STATE_RUNNING,
    "ready": pb.BUILD_STATE_READY,
    "failed": pb.BUILD_STATE_FAILED,
}
_MOMENTS = ("atoms_per_cell", "a", "b", "c", "alpha", "beta", "gamma", "volume_per_atom")


def kinds_from(values) -> tuple[str, ...]:
    """Kind names of a request (default: tensor shards and statistics); InvalidInput if unknown."""
    if not values:
        return ("tensor_shards", "statistics")
    unknown = [v for v in values if v not in _KINDS]
    if unknown:
        raise InvalidInput(f"unknown feature kind(s): {unknown}")
    return tuple(dict.fromkeys(_KINDS[v] for v in values))


def kind_enum(name: str) -> int:
    """The FeatureKind value of a kind name."""
    return _KIND_ENUMS[name]


def state_enum(name: str) -> int:
    """The BuildState value of a state name."""
    return _STATES[name]


def feature_set(state: FeatureSetState) -> pb.FeatureSet:
    """The FeatureSet message of a state."""
    request = state.request
    message = pb.FeatureSet(
        dataset=request.dataset,
        dataset_commit=request.commit,
        featurizer_name=request.config.name,
        canonical_params_json=request.config.canonical_json,
        config_hash=request.config.config_hash,
        artifacts=[_artifact(a) for a in state.artifacts],
    )
    if state.statistics is not None and "statistics" in request.kinds:
        message.statistics.CopyFrom(statistics(state.statistics))
    return message


def _artifact(artifact: ArtifactState) -> pb.FeatureArtifact:
    message = pb.FeatureArtifact(
        kind=kind_enum(artifact.kind),
        state=state_enum(artifact.state),
        artifact_id=artifact.artifact_id,
        shards=[_shard(s) for s in artifact.shards],
    )
    if artifact.finished:
        message.finished.CopyFrom(_timestamp(artifact.finished))
    if artifact.error is not None:
        message.error.code, message.error.message = artifact.error
    return message


def _shard(shard: dict[str, Any]) -> pb.Shard:
    ref = common_pb2.ObjectRef(
        uri=shard["uri"],
        sha256=shard["sha256"],
        size_bytes=shard["size_bytes"],
        media_type=shard["media_type"],
    )
    return pb.Shard(
        object=ref,
        num_crystals=shard["num_crystals"],
        first_index=shard["first_index"],
        num_atoms=shard["num_atoms"],
    )


def statistics(stats: dict[str, Any]) -> pb.FeatureStatistics:
    """FeatureStatistics from the stored statistics JSON."""
    message = pb.FeatureStatistics(num_crystals=stats["num_crystals"], num_atoms=stats["num_atoms"])
    for name in _MOMENTS:
        getattr(message, name).CopyFrom(_moments(stats[name]))
    if "neighbors_per_atom" in stats:
        message.neighbors_per_atom.CopyFrom(_moments(stats["neighbors_per_atom"]))
    for z, count in stats["element_counts"].items():
        message.element_counts[int(z)] = count
    for name, values in stats["properties"].items():
        message.properties[name].CopyFrom(_moments(values))
    return message


def _moments(values: dict[str, float]) -> pb.Moments:
    finite = {k: v for k, v in values.items() if not (isinstance(v, float) and math.isnan(v))}
    return pb.Moments(**finite)


def _timestamp(seconds: float) -> Timestamp:
    message = Timestamp()
    message.FromNanoseconds(int(seconds * 1e9))
    return message
