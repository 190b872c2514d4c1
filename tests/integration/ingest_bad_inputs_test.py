"""The bad-input corpus through the ingest service: a reason per bad record, no crash.

tests/data/bad_inputs/expected.json (the xtal readers' manifest) gives each file's expected
outcome: a file-level error, or a code per record (None = accepted). Over gRPC a file-level error
is one rejected record keyed by the file name. Files travel as raw bytes (the `raw` chunk field),
so files that are not valid UTF-8 get the same per-record reasons as from the readers.
"""

import json
from pathlib import Path

import grpc
import pytest
from autoperi.ingest.v1 import ingest_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from ingest_svc import IngestDeps, IngestSettings, create_server
from ingest_svc.client import file_requests, header_request
from ingest_svc.testing import serving
from storage import LocalObjectStore, LocalVersionStore
from xtal import CrystalError

CORPUS = Path(__file__).resolve().parents[1] / "data" / "bad_inputs"
EXPECTED = json.loads((CORPUS / "expected.json").read_text())
#: corpus files the ingest client refuses before sending anything, with the readers' outcome
REFUSED_BY_THE_CLIENT = {"gzip_bomb.cif.gz"}


@pytest.fixture(scope="module")
def stub(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad-inputs-store")
    versions = LocalVersionStore(LocalObjectStore(root, durable=False))
    settings = IngestSettings(host="127.0.0.1", port=0, log_json=False)
    with (
        serving(lambda: create_server(settings, IngestDeps(versions))) as server,
        grpc.insecure_channel(server.address) as channel,
    ):
        yield ingest_pb2_grpc.IngestServiceStub(channel), channel


def test_corpus_has_30_files():
    assert len(EXPECTED) >= 30


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_bad_file_gets_reasons(stub, name):
    stub, _ = stub
    path = CORPUS / name
    header = header_request("bad-inputs", create_dataset=True, message=name)
    if name in REFUSED_BY_THE_CLIENT:
        [want] = EXPECTED[name]["records"]
        with pytest.raises(CrystalError) as refused:
            list(file_requests(path))
        assert refused.value.code == want["code"] and want["message"] in refused.value.message
        return
    reply = stub.Ingest(iter([header, *file_requests(path)]), timeout=300)
    total = reply.num_accepted + reply.num_duplicates + reply.num_rejected
    assert reply.num_received == total >= 1
    assert all(r.code and r.message for r in reply.rejected_records)
    expected = EXPECTED[name]
    if "file_error" in expected:
        [rejected] = reply.rejected_records
        assert (rejected.record_key, rejected.code) == (name, expected["file_error"]["code"])
        assert expected["file_error"]["message"] in rejected.message
        return
    codes = [r["code"] for r in expected["records"]]
    assert [r.code for r in reply.rejected_records] == [c for c in codes if c is not None]
    assert reply.num_accepted + reply.num_duplicates == codes.count(None)
    wanted = [r for r in expected["records"] if r["code"] is not None]
    for got, want in zip(reply.rejected_records, wanted, strict=True):
        assert want.get("message", "") in got.message


def test_service_still_serves_after_the_corpus(stub):
    _, channel = stub
    health = health_pb2_grpc.HealthStub(channel)
    reply = health.Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
