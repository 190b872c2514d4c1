"""Fixtures of the ingest service tests: a server on a free port over a temporary store."""

import grpc
import pytest
from autoperi.ingest.v1 import ingest_pb2_grpc
from autoperi_data import csv_rows, split_path
from storage import LocalObjectStore, LocalVersionStore

from ingest_svc import IngestDeps, IngestSettings, create_server
from ingest_svc.testing import serving


@pytest.fixture(scope="module")
def ingest_server(tmp_path_factory):
    """A started ingest server with small request limits, and its version store."""
    root = tmp_path_factory.mktemp("ingest-store")
    versions = LocalVersionStore(LocalObjectStore(root, durable=False))
    settings = IngestSettings(
        host="127.0.0.1",
        port=0,
        max_records_per_request=2000,
        max_bytes_per_request=8 << 20,
        parse_batch_records=50,
        parse_timeout_s=30,
        commit_margin_s=0.3,  # below the deadline tests' timeouts, above any local commit
        log_json=False,
    )
    with serving(lambda: create_server(settings, IngestDeps(versions))) as server:
        yield server, versions


@pytest.fixture(scope="module")
def mp20_rows(data_dir, tmp_path_factory):
    """The first 300 rows of MP-20 test as a small CSV file."""
    rows = csv_rows(split_path("mp_20", "test", data_dir).read_text())
    path = tmp_path_factory.mktemp("mp20") / "mp20_head.csv"
    path.write_text("".join(rows[:301]))
    return path


@pytest.fixture
def stub(ingest_server):
    """A blocking IngestService stub connected to the module's server."""
    server, _ = ingest_server
    with grpc.insecure_channel(server.address) as channel:
        yield ingest_pb2_grpc.IngestServiceStub(channel)
