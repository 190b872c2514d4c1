"""The featurestore as the trainer uses it: resolve a dataset ref, then get its tensor shards."""

from typing import Any

import grpc
from autoperi.common.v1 import common_pb2
from autoperi.featurestore.v1 import featurestore_pb2 as fs
from autoperi.featurestore.v1 import featurestore_pb2_grpc
from svc_kit import ClientSecurity, InvalidInput, Unavailable, open_channel, public_text

_KINDS = [fs.FEATURE_KIND_TENSOR_SHARDS]


class FeatureStoreClient:
    """Blocking calls to a featurestore at `address` (host:port) with featuriser `params_json`,
    over channels secured as `security` says (None: the AUTOPERI_TLS_* / AUTOPERI_AUTH_TOKEN
    variables of this process)."""

    def __init__(
        self,
        address: str,
        params_json: str = "{}",
        timeout_s: float = 3600.0,
        security: ClientSecurity | None = None,
    ) -> None:
        self.address, self.params_json, self.timeout_s = address, params_json, timeout_s
        self.security = security

    def _featurizer(self) -> fs.FeaturizerConfig:
        return fs.FeaturizerConfig(name="periodic", params_json=self.params_json)

    def resolve(self, dataset: str, ref: str) -> str:
        """The commit id of (dataset, ref); InvalidInput for an unknown dataset or ref."""
        request = fs.GetFeaturesRequest(
            dataset=common_pb2.DatasetRef(dataset=dataset, ref=ref),
            featurizer=self._featurizer(),
            kinds=_KINDS,
            lookup_only=True,
        )
        reply = self._call(lambda stub: stub.GetFeatures(request, timeout=30), dataset, ref)
        return reply.feature_set.dataset_commit

    def shards(self, dataset: str, commit: str) -> list[dict[str, Any]]:
        """Build (or join the build of) the tensor shards of a commit; their ObjectRefs in order.

        Raises RuntimeError with the featurestore's reason when the build failed.
        """
        request = fs.BuildFeaturesRequest(
            dataset=common_pb2.DatasetRef(dataset=dataset, ref=commit),
            featurizer=self._featurizer(),
            kinds=_KINDS,
        )
        events = self._call(
            lambda stub: list(stub.BuildFeatures(request, timeout=self.timeout_s)), dataset, commit
        )
        [artifact] = events[-1].feature_set.artifacts
        if artifact.state != fs.BUILD_STATE_READY:
            raise RuntimeError(f"featurestore could not build {dataset}: {artifact.error.message}")
        return [
            {"uri": s.object.uri, "sha256": s.object.sha256, "size_bytes": s.object.size_bytes}
            for s in artifact.shards
        ]

    def _call(self, fn, dataset: str, ref: str):
        with open_channel(self.address, self.security) as channel:
            try:
                return fn(featurestore_pb2_grpc.FeatureStoreServiceStub(channel))
            except grpc.RpcError as exc:
                if exc.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
                    raise InvalidInput(
                        f"unknown dataset {dataset!r} (ref {ref[:200]!r}): {_details(exc)}"
                    ) from None
                raise Unavailable(f"featurestore at {self.address}: {_details(exc)}") from None


def _details(exc: grpc.RpcError) -> str:
    """The featurestore's reason, passed on to our client with host paths withheld."""
    return public_text(exc.details() or exc.code().name)
