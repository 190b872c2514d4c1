"""`create_server(settings, deps)`: the ingest gRPC server over injected stores."""

from dataclasses import dataclass

from autoperi.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from storage import GRPC_STATUS, VersionStore, open_version_store
from svc_kit import ServiceServer, build_server

from ingest_svc._core import IngestCore
from ingest_svc._model import RequestAbandoned
from ingest_svc._servicer import IngestServicer
from ingest_svc._settings import IngestSettings

SERVICE_NAME = ingest_pb2.DESCRIPTOR.services_by_name["IngestService"].full_name


@dataclass(frozen=True)
class IngestDeps:
    """What the ingest server needs from outside: the dataset version store."""

    versions: VersionStore

    @classmethod
    def from_settings(cls, settings: IngestSettings) -> "IngestDeps":
        """Open the stores named by `settings.storage_uri`."""
        return cls(versions=open_version_store(settings.storage_uri))


def create_server(settings: IngestSettings, deps: IngestDeps) -> ServiceServer:
    """Build (not start) the ingest server; `server.core` is its IngestCore, whose parser
    processes `server.stop()` ends."""
    core = IngestCore(deps.versions, settings.sandbox_limits(), settings.session_limits())
    servicer = IngestServicer(core, settings.commit_margin_s)
    server = build_server(
        settings,
        [(ingest_pb2_grpc.add_IngestServiceServicer_to_server, servicer)],
        [SERVICE_NAME],
        error_map={**GRPC_STATUS, RequestAbandoned: "CANCELLED"},
    )
    server.core = core  # type: ignore[attr-defined]
    server.on_stop.append(core.close)
    return server
