"""MP-20 val+test through the ingest service over gRPC: throughput, and a re-ingest adds nothing."""

import logging
import time

import grpc
import pytest
from autoperi.ingest.v1 import ingest_pb2_grpc
from ingest_svc import IngestDeps, IngestSettings, create_server
from ingest_svc.client import csv_requests, header_request
from ingest_svc.testing import serving
from storage import LocalObjectStore, LocalVersionStore

log = logging.getLogger(__name__)
SPLITS = ("val", "test")
NUM_CRYSTALS = 18_093


def _ingest(stub, files):
    requests = [header_request("mp-20", create_dataset=True, message="mp_20 val+test")]
    stream = iter(requests + [r for path in files for r in csv_requests(path, 500)])
    return stub.Ingest(stream, timeout=3600)


@pytest.mark.slow
def test_mp20_val_test_ingest_and_reingest(data_dir, tmp_path):
    files = [data_dir / "mp_20" / "assembled" / f"{split}.csv" for split in SPLITS]
    versions = LocalVersionStore(LocalObjectStore(tmp_path / "store", durable=False))
    settings = IngestSettings(host="127.0.0.1", port=0, log_json=False)
    with (
        serving(lambda: create_server(settings, IngestDeps(versions))) as server,
        grpc.insecure_channel(server.address) as channel,
    ):
        stub = ingest_pb2_grpc.IngestServiceStub(channel)
        start = time.perf_counter()
        first = _ingest(stub, files)
        seconds = time.perf_counter() - start
        again = _ingest(stub, files)
    rate = first.num_received / seconds
    log.warning(
        "MP-20 val+test: %d received, %d accepted, %d duplicates, %d rejected in %.1fs"
        " (%.1f crystals/s)",
        first.num_received, first.num_accepted, first.num_duplicates, first.num_rejected,
        seconds, rate,
    )  # fmt: skip
    assert first.num_received == NUM_CRYSTALS and first.num_rejected == 0
    assert first.num_accepted + first.num_duplicates == NUM_CRYSTALS and first.commit_id
    assert (again.num_accepted, again.num_duplicates) == (0, NUM_CRYSTALS)
    assert again.commit_id == ""
