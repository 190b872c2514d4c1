"""The ingest service: crystal files and records into versioned datasets, over gRPC.

`create_server(settings, deps)` builds the server; `IngestCore` is its logic without gRPC;
`ingest_svc.client` turns files into request streams; `ingest_svc.main.main` runs it.
"""

from ingest_svc._core import IngestCore
from ingest_svc._model import IngestResult, IngestTarget, Rejection, RejectPolicy
from ingest_svc._sandbox import ParserPool, SandboxLimits
from ingest_svc._server import SERVICE_NAME, IngestDeps, create_server
from ingest_svc._session import IngestSession, SessionLimits
from ingest_svc._settings import IngestSettings

__all__ = [
    "SERVICE_NAME",
    "IngestCore",
    "IngestDeps",
    "IngestResult",
    "IngestSession",
    "IngestSettings",
    "IngestTarget",
    "ParserPool",
    "RejectPolicy",
    "Rejection",
    "SandboxLimits",
    "SessionLimits",
    "create_server",
]
