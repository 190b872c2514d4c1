"""The thin gRPC servicer of the featurestore: proto <-> domain, work in FeatureStoreCore."""

import asyncio
import contextlib

import grpc
from autoperi.featurestore.v1 import featurestore_pb2 as pb
from autoperi.featurestore.v1 import featurestore_pb2_grpc
from svc_kit import InvalidInput

from featurestore_svc import _convert as convert
from featurestore_svc._config import resolve_config
from featurestore_svc._core import FeatureRequest, FeatureStoreCore


class FeatureStoreServicer(featurestore_pb2_grpc.FeatureStoreServiceServicer):
    """FeatureStoreService over a FeatureStoreCore."""

    def __init__(self, core: FeatureStoreCore) -> None:
        self.core = core

    async def _request(self, message) -> FeatureRequest:
        if not message.dataset.dataset:
            raise InvalidInput("the request names no dataset")
        config = resolve_config(message.featurizer.name, message.featurizer.params_json)
        kinds = convert.kinds_from(list(message.kinds))
        dataset = message.dataset.dataset
        commit = await asyncio.to_thread(self.core.resolve, dataset, message.dataset.ref)
        return FeatureRequest(dataset, commit, config, kinds)

    async def GetFeatures(self, request, context: grpc.aio.ServicerContext):
        feature_request = await self._request(request)
        if not request.lookup_only:
            self.core.ensure(feature_request)
        state = await asyncio.to_thread(self.core.state, feature_request)
        return pb.GetFeaturesResponse(feature_set=convert.feature_set(state))

    async def BuildFeatures(self, request, context: grpc.aio.ServicerContext):
        feature_request = await self._request(request)
        futures = self.core.ensure(feature_request)
        state = await asyncio.to_thread(self.core.state, feature_request)
        for artifact in state.artifacts:
            progress = pb.BuildProgress(
                kind=convert.kind_enum(artifact.kind),
                state=convert.state_enum(artifact.state),
                stage="building" if artifact.state in ("queued", "running") else artifact.state,
            )
            yield pb.BuildFeaturesResponse(progress=progress)
        for future in futures:
            with contextlib.suppress(Exception):  # a failure is reported as a FAILED artifact
                await asyncio.wrap_future(future)
        state = await asyncio.to_thread(self.core.state, feature_request)
        yield pb.BuildFeaturesResponse(feature_set=convert.feature_set(state))
