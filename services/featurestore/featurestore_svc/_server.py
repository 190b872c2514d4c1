"""`create_server(settings, deps)`: the featurestore gRPC server over injected stores."""

from dataclasses import dataclass

from autoperi.featurestore.v1 import featurestore_pb2, featurestore_pb2_grpc
from storage import (
    GRPC_STATUS,
    ObjectStore,
    VersionStore,
    open_object_store,
    open_version_store,
)
from svc_kit import ServiceServer, build_server

from featurestore_svc._core import FeatureStoreCore
from featurestore_svc._servicer import FeatureStoreServicer
from featurestore_svc._settings import FeatureStoreSettings

SERVICE_NAME = featurestore_pb2.DESCRIPTOR.services_by_name["FeatureStoreService"].full_name


@dataclass(frozen=True)
class FeatureStoreDeps:
    """The stores: objects (features are written here) and dataset versions (read)."""

    objects: ObjectStore
    versions: VersionStore

    @classmethod
    def from_settings(cls, settings: FeatureStoreSettings) -> "FeatureStoreDeps":
        """Open the stores named by `settings.storage_uri` (features) and `settings.versions_uri`
        (datasets; default: the same location)."""
        versions = settings.versions_uri or settings.storage_uri
        return cls(open_object_store(settings.storage_uri), open_version_store(versions))


def create_server(settings: FeatureStoreSettings, deps: FeatureStoreDeps) -> ServiceServer:
    """Build (not start) the featurestore server; `server.core` is its FeatureStoreCore, which
    `server.stop()` closes (queued builds are dropped, a running one finishes)."""
    core = FeatureStoreCore(
        deps.objects,
        deps.versions,
        max_builds=settings.max_concurrent_builds,
        lease_s=settings.build_lease_s,
        energy_cache_dir=settings.energy_cache_dir,
    )
    server = build_server(
        settings,
        [
            (
                featurestore_pb2_grpc.add_FeatureStoreServiceServicer_to_server,
                FeatureStoreServicer(core),
            )
        ],
        [SERVICE_NAME],
        error_map=GRPC_STATUS,
    )
    server.core = core  # type: ignore[attr-defined]
    server.on_stop.append(core.close)
    return server
