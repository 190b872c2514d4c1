"""`create_server(settings, deps)`: the trainer gRPC server over an object store and Ray."""

from dataclasses import dataclass

import grpc
from autoperi.training.v1 import training_pb2, training_pb2_grpc
from storage import CorruptObject, InvalidKey, ObjectStore, open_object_store
from svc_kit import ServiceServer, build_server

from trainer_svc._core import TrainerCore
from trainer_svc._featurestore import FeatureStoreClient
from trainer_svc._servicer import TrainingServicer
from trainer_svc._settings import TrainerSettings

SERVICE_NAME = training_pb2.DESCRIPTOR.services_by_name["TrainingService"].full_name
ERROR_MAP = {InvalidKey: grpc.StatusCode.INVALID_ARGUMENT, CorruptObject: grpc.StatusCode.DATA_LOSS}


@dataclass(frozen=True)
class TrainerDeps:
    """The object store (run records, checkpoints) and the featurestore client."""

    objects: ObjectStore
    featurestore: FeatureStoreClient

    @classmethod
    def from_settings(cls, settings: TrainerSettings) -> "TrainerDeps":
        """Open the store of `settings.storage_uri`; dial the featurestore lazily."""
        return cls(
            open_object_store(settings.storage_uri),
            FeatureStoreClient(settings.featurestore_address, settings.featurizer_params_json),
        )


def create_server(settings: TrainerSettings, deps: TrainerDeps) -> ServiceServer:
    """Build (not start) the trainer server; `server.core` is its TrainerCore. Ray must be
    initialised (see `trainer_svc.main`) before runs start."""
    core = TrainerCore(deps.objects, settings, deps.featurestore)
    server = build_server(
        settings,
        [(training_pb2_grpc.add_TrainingServiceServicer_to_server, TrainingServicer(core))],
        [SERVICE_NAME],
        error_map=ERROR_MAP,
    )
    server.core = core  # type: ignore[attr-defined]
    return server
