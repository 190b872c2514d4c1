"""`create_server(settings, deps)`: the LoopService gRPC server over a `LoopCore`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from autoperi.loop.v1 import loop_pb2, loop_pb2_grpc
from storage import ObjectStore, open_object_store
from svc_kit import ServiceServer, build_server

from loop_svc._checks import resolve_spec
from loop_svc._clients import IngestClient
from loop_svc._loops import ClientsFactory, LoopCore
from loop_svc._servicer import LoopServicer
from loop_svc._settings import LoopSettings
from loop_svc._spec import LoopSpec

SERVICE_NAME = loop_pb2.DESCRIPTOR.services_by_name["LoopService"].full_name


@dataclass(frozen=True)
class LoopDeps:
    """What the service needs from outside: the object store (base checkpoints), the ingest
    (plans are checked against it) and, per loop, the clients its engine calls."""

    objects: ObjectStore
    ingest: IngestClient
    make_clients: ClientsFactory

    @classmethod
    def from_settings(cls, settings: LoopSettings) -> LoopDeps:
        """Clients of the services at the settings' addresses, over `storage_uri`."""
        from loop_svc._run import Addresses, build_clients

        addresses = Addresses(
            settings.ingest_address, settings.scorer_address, settings.sampler_address,
            settings.trainer_address,
        )  # fmt: skip

        def make_clients(spec: LoopSpec, cache: Path):
            return build_clients(spec, addresses, settings.storage_uri, cache)

        objects = open_object_store(settings.storage_uri)
        return cls(objects, IngestClient(settings.ingest_address), make_clients)

    def resolver(self) -> Callable[[LoopSpec], LoopSpec]:
        return lambda spec: resolve_spec(spec, self.ingest, self.objects)


def create_server(settings: LoopSettings, deps: LoopDeps) -> ServiceServer:
    """Build (not start) the loop server; `server.core` is its LoopCore, which has already
    resumed the loops its state directory holds as running. Closing the core (done on stop)
    stops the engines before their next stage and keeps those loops resumable."""
    core = LoopCore(Path(settings.state_dir), deps.make_clients, settings.max_active_loops)
    server = build_server(
        settings,
        [(loop_pb2_grpc.add_LoopServiceServicer_to_server, LoopServicer(core, deps.resolver()))],
        [SERVICE_NAME],
    )
    core.resume_running()
    server.core = core  # type: ignore[attr-defined]
    server.on_stop.append(core.close)
    return server
