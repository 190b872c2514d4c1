"""The ingest service: crystal files and records into versioned datasets, over gRPC.

`create_server(settings, deps)` builds the server; `IngestCore` is its logic without gRPC;
`ingest_svc.client` turns files into request streams; `ingest_svc.main.main` runs it.
"""

from svc_kit import lazy_exports

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

__getattr__ = lazy_exports(
    __name__,
    {
        "IngestCore": "._core",
        "IngestResult": "._model",
        "IngestTarget": "._model",
        "Rejection": "._model",
        "RejectPolicy": "._model",
        "ParserPool": "._sandbox",
        "SandboxLimits": "._sandbox",
        "SERVICE_NAME": "._server",
        "IngestDeps": "._server",
        "create_server": "._server",
        "IngestSession": "._session",
        "SessionLimits": "._session",
        "IngestSettings": "._settings",
    },
)
