"""Contract tests of the gRPC/protobuf API: what the generated code exposes, checked through its
descriptors, and the code generator itself.

The generated package comes from `make protos` (build/gen/python, on sys.path through the .pth
file `make setup` writes); these tests fail with that instruction when it is missing.
"""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from concurrent import futures
from pathlib import Path
from types import ModuleType

import grpc
import pytest
from google.protobuf import descriptor
from google.protobuf.message import Message

REPO = Path(__file__).resolve().parents[2]
PROTOS = REPO / "protos"
GENERATOR = REPO / "infra" / "protos" / "gen_protos.py"

UNARY, CLIENT_STREAM, SERVER_STREAM = (False, False), (True, False), (False, True)

# package -> service -> rpc -> (client_streaming, server_streaming): the API clients rely on.
EXPECTED_SERVICES: dict[str, dict[str, dict[str, tuple[bool, bool]]]] = {
    "autoperi.ingest.v1": {
        "IngestService": {
            "Ingest": CLIENT_STREAM,
            "ListDatasets": UNARY,
            "GetDataset": UNARY,
            "Commit": UNARY,
            "ListCommits": UNARY,
            "Diff": UNARY,
            "Merge": UNARY,
            "ReadCrystals": SERVER_STREAM,
        }
    },
    "autoperi.featurestore.v1": {
        "FeatureStoreService": {"GetFeatures": UNARY, "BuildFeatures": SERVER_STREAM}
    },
    "autoperi.training.v1": {
        "TrainingService": {
            "StartRun": UNARY,
            "GetRun": UNARY,
            "ListRuns": UNARY,
            "CancelRun": UNARY,
            "StreamMetrics": SERVER_STREAM,
        }
    },
    "autoperi.sampler.v1": {
        "SamplerService": {
            "Sample": UNARY,
            "SampleStream": SERVER_STREAM,
            "GetSamplerInfo": UNARY,
        }
    },
    "autoperi.scorer.v1": {
        "ScorerService": {"Score": UNARY, "ScoreStream": SERVER_STREAM, "GetScorerInfo": UNARY}
    },
    "autoperi.loop.v1": {
        "LoopService": {
            "StartLoop": UNARY,
            "GetLoop": UNARY,
            "ListLoops": UNARY,
            "CancelLoop": UNARY,
            "StreamLoopEvents": SERVER_STREAM,
        }
    },
}
PROTO_FILES = sorted(p.relative_to(PROTOS).as_posix() for p in PROTOS.rglob("*.proto"))


def _import(module: str) -> ModuleType:
    """Import a generated module, failing with the fix when the generated code is missing."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        if not (error.name or "").startswith("autoperi"):
            raise
        pytest.fail(
            f"generated protobuf module {module} not found: run `make protos` (writes "
            "build/gen/python) and `make setup` (puts it on sys.path), or add build/gen/python "
            "to PYTHONPATH",
            pytrace=False,
        )


def _pb2(proto: str) -> ModuleType:
    """The generated message module of `proto` (a path relative to protos/)."""
    return _import(proto.removesuffix(".proto").replace("/", ".") + "_pb2")


def _upper_snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).upper()


def _all_messages(file: descriptor.FileDescriptor) -> list[descriptor.Descriptor]:
    """Every message of a file, nested ones included (map entries excluded)."""
    pending = list(file.message_types_by_name.values())
    found = []
    while pending:
        message = pending.pop()
        if not message.GetOptions().map_entry:
            found.append(message)
        pending.extend(message.nested_types)
    return found


def _all_enums(file: descriptor.FileDescriptor) -> list[descriptor.EnumDescriptor]:
    nested = [e for m in _all_messages(file) for e in m.enum_types]
    return [*file.enum_types_by_name.values(), *nested]


def test_every_expected_package_has_a_proto() -> None:
    packages = {str(Path(p).parent).replace("/", ".") for p in PROTO_FILES}
    assert {"autoperi.crystal.v1", *EXPECTED_SERVICES} <= packages


@pytest.mark.parametrize("proto", PROTO_FILES)
def test_generated_modules_import_and_match_the_directory(proto: str) -> None:
    module = _pb2(proto)
    _import(module.__name__ + "_grpc")
    assert module.DESCRIPTOR.name == proto
    assert module.DESCRIPTOR.package == str(Path(proto).parent).replace("/", ".")


@pytest.mark.parametrize("proto", PROTO_FILES)
def test_enums_start_at_unspecified_and_carry_their_prefix(proto: str) -> None:
    for enum in _all_enums(_pb2(proto).DESCRIPTOR):
        prefix = _upper_snake(enum.name)
        assert enum.values[0].number == 0, enum.full_name
        assert enum.values[0].name == f"{prefix}_UNSPECIFIED", enum.full_name
        for value in enum.values:
            assert value.name.startswith(prefix + "_"), value.name


@pytest.mark.parametrize("proto", PROTO_FILES)
def test_names_follow_the_style(proto: str) -> None:
    for message in _all_messages(_pb2(proto).DESCRIPTOR):
        assert re.fullmatch(r"[A-Z][A-Za-z0-9]*", message.name), message.full_name
        for field in message.fields:
            assert re.fullmatch(r"[a-z][a-z0-9_]*", field.name), field.full_name


@pytest.mark.parametrize("package", sorted(EXPECTED_SERVICES))
def test_services_have_the_expected_rpcs(package: str) -> None:
    name = package.split(".")[1]
    module = _import(f"{package}.{name}_pb2")
    grpc_module = _import(f"{package}.{name}_pb2_grpc")
    services = module.DESCRIPTOR.services_by_name
    assert set(services) == set(EXPECTED_SERVICES[package])
    for service_name, rpcs in EXPECTED_SERVICES[package].items():
        methods = {m.name: m for m in services[service_name].methods}
        assert set(methods) == set(rpcs), service_name
        for rpc, kind in rpcs.items():
            method = methods[rpc]
            assert (method.client_streaming, method.server_streaming) == kind, rpc
            assert method.input_type.full_name == f"{package}.{rpc}Request"
            assert method.output_type.full_name == f"{package}.{rpc}Response"
        for attribute in (f"{service_name}Stub", f"add_{service_name}Servicer_to_server"):
            assert hasattr(grpc_module, attribute), attribute


def test_no_service_outside_the_contract() -> None:
    declared = {
        (_pb2(p).DESCRIPTOR.package, s)
        for p in PROTO_FILES
        for s in _pb2(p).DESCRIPTOR.services_by_name
    }
    assert declared == {(p, s) for p, services in EXPECTED_SERVICES.items() for s in services}


def _sample_crystal() -> Message:
    crystal_pb2 = _import("autoperi.crystal.v1.crystal_pb2")
    crystal = crystal_pb2.Crystal(id="perov_5:test:0", content_hash="ab" * 32)
    for row, vector in zip("abc", ((3.9, 0.0, 0.0), (0.0, 3.9, 0.0), (0.1, 0.2, 4.1)), strict=True):
        getattr(crystal.lattice, row).CopyFrom(
            crystal_pb2.Vector3(x=vector[0], y=vector[1], z=vector[2])
        )
    sites = ((38, (0.0, 0.0, 0.0)), (22, (0.5, 0.5, 0.5)), (8, (0.1 + 0.2, 0.5, 0.0)))
    for atomic_number, (x, y, z) in sites:
        crystal.sites.add(
            atomic_number=atomic_number, frac_coords=crystal_pb2.Vector3(x=x, y=y, z=z)
        )
    crystal.properties["formation_energy_per_atom"] = -2.5116
    crystal.provenance.source = "perov_5:test"
    crystal.provenance.created.FromSeconds(1_700_000_000)
    return crystal


def test_crystal_round_trips_through_bytes() -> None:
    crystal = _sample_crystal()
    crystal_pb2 = _import("autoperi.crystal.v1.crystal_pb2")
    decoded = crystal_pb2.Crystal.FromString(crystal.SerializeToString())
    assert decoded == crystal
    assert [s.atomic_number for s in decoded.sites] == [38, 22, 8]
    assert decoded.sites[2].frac_coords.x == 0.1 + 0.2  # doubles travel bit for bit
    assert decoded.lattice.c.y == 0.2
    assert decoded.properties["formation_energy_per_atom"] == -2.5116
    assert decoded.provenance.created.seconds == 1_700_000_000


def test_crystal_round_trips_through_the_domain_type() -> None:
    convert = pytest.importorskip("xtal.convert", reason="libs/xtal (xtal.convert) not available")
    sample = _sample_crystal()
    sample.ClearField("content_hash")  # a made-up hash; the domain type computes its own
    again = convert.from_proto(convert.to_proto(convert.from_proto(sample)))
    assert again.lattice.tolist() == [[3.9, 0.0, 0.0], [0.0, 3.9, 0.0], [0.1, 0.2, 4.1]]
    assert again.frac_coords.tolist() == [[0.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.1 + 0.2, 0.5, 0.0]]
    assert again.atomic_numbers.tolist() == [38, 22, 8]
    assert dict(again.properties) == {"formation_energy_per_atom": -2.5116}
    assert (again.id, again.provenance.source) == ("perov_5:test:0", "perov_5:test")


def _stand_in_ingest(ingest_pb2: ModuleType, ingest_grpc: ModuleType) -> object:
    """An IngestService keeping streamed crystals and streaming them back; others UNIMPLEMENTED."""

    class StandIn(ingest_grpc.IngestServiceServicer):
        def __init__(self) -> None:
            self.stored: list[Message] = []

        def Ingest(self, requests, context):
            header = next(requests).header
            for request in requests:
                self.stored.extend(request.crystals.crystals)
            return ingest_pb2.IngestResponse(dataset=header.dataset, num_accepted=len(self.stored))

        def ReadCrystals(self, request, context):
            for crystal in self.stored:
                yield ingest_pb2.ReadCrystalsResponse(commit_id="c1", crystals=[crystal])

    return StandIn()


def test_streaming_rpcs_work_over_a_real_channel() -> None:
    ingest_pb2 = _import("autoperi.ingest.v1.ingest_pb2")
    ingest_grpc = _import("autoperi.ingest.v1.ingest_pb2_grpc")
    crystal_pb2 = _import("autoperi.crystal.v1.crystal_pb2")
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    ingest_grpc.add_IngestServiceServicer_to_server(
        _stand_in_ingest(ingest_pb2, ingest_grpc), server
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    batch = crystal_pb2.CrystalBatch(crystals=[_sample_crystal()] * 2)
    stream = [
        ingest_pb2.IngestRequest(header=ingest_pb2.IngestHeader(dataset="perov5-demo")),
        ingest_pb2.IngestRequest(crystals=batch),
    ]
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = ingest_grpc.IngestServiceStub(channel)
            reply = stub.Ingest(iter(stream), timeout=10)
            read = list(stub.ReadCrystals(ingest_pb2.ReadCrystalsRequest(), timeout=10))
    finally:
        server.stop(grace=None)
    assert (reply.dataset, reply.num_accepted) == ("perov5-demo", 2)
    assert [r.crystals[0] for r in read] == list(batch.crystals)


def _generate(protos: Path, out: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(GENERATOR), "--protos", str(protos), "--out", str(out)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_generator_is_idempotent_and_removes_stale_modules(tmp_path: Path) -> None:
    protos, out = tmp_path / "protos", tmp_path / "gen"
    _write(protos / "acme/a/v1/a.proto", 'syntax = "proto3";\npackage acme.a.v1;\nmessage A {}\n')
    _write(protos / "acme/b/v1/b.proto", 'syntax = "proto3";\npackage acme.b.v1;\nmessage B {}\n')
    assert _generate(protos, out).returncode == 0
    first = _tree(out)
    assert {"acme/a/v1/a_pb2.py", "acme/a/v1/a_pb2.pyi", "acme/a/v1/a_pb2_grpc.py"} <= set(first)
    assert {"acme/a/__init__.py", "acme/a/v1/__init__.py"} <= set(first)
    assert "acme/__init__.py" not in first  # the top level stays a namespace package
    assert _generate(protos, out).returncode == 0
    assert _tree(out) == first
    (protos / "acme/b/v1/b.proto").unlink()
    assert _generate(protos, out).returncode == 0
    assert not [name for name in _tree(out) if name.startswith("acme/b/")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('syntax = "proto3";\npackage acme.a.v1;\nmessage A { int32 x = 1 }\n', "a.proto:3"),
        ('syntax = "proto3";\npackage acme.other.v1;\nmessage A {}\n', "package acme.a.v1"),
    ],
)
def test_generator_reports_proto_errors_and_keeps_the_output(
    tmp_path: Path, text: str, expected: str
) -> None:
    protos, out = tmp_path / "protos", tmp_path / "gen"
    _write(protos / "acme/a/v1/a.proto", 'syntax = "proto3";\npackage acme.a.v1;\nmessage A {}\n')
    assert _generate(protos, out).returncode == 0
    before = _tree(out)
    _write(protos / "acme/a/v1/a.proto", text)
    result = _generate(protos, out)
    assert result.returncode == 1
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert _tree(out) == before
