"""The fair scheduler: lanes take turns, a lane with nothing running goes first, cancelled and
failing jobs are reported through their futures (jobs block on events, so the order is exact);
over a real server, a one-crystal ingest is not starved by a big one."""

import threading
import time
from concurrent.futures import CancelledError, wait

import grpc
import pytest
from autoperi.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from storage import LocalObjectStore, LocalVersionStore

from ingest_svc import IngestDeps, IngestSettings, create_server
from ingest_svc._fair import FairScheduler
from ingest_svc.client import header_request
from ingest_svc.server_test import GOOD_CIF
from ingest_svc.testing import serving

WAIT_S = 30


class Gate:
    """Jobs that record their start and wait until they are let through."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.events: dict[str, threading.Event] = {}
        self._changed = threading.Condition()

    def job(self, name: str) -> str:
        with self._changed:
            self.started.append(name)
            self._changed.notify_all()
        self.events.setdefault(name, threading.Event()).wait(WAIT_S)
        return name

    def release(self, name: str) -> None:
        self.events.setdefault(name, threading.Event()).set()

    def until_started(self, count: int) -> list[str]:
        with self._changed:
            assert self._changed.wait_for(lambda: len(self.started) >= count, WAIT_S)
            return list(self.started)


@pytest.fixture
def scheduler():
    built = []

    def build(threads: int) -> FairScheduler:
        built.append(FairScheduler(threads, "test"))
        return built[-1]

    yield build
    for scheduler in built:
        scheduler.shutdown()


def test_lanes_take_turns_on_one_thread(scheduler):
    pool, gate = scheduler(1), Gate()
    big, small = pool.lane(), pool.lane()
    futures = [big.submit(gate.job, f"big{i}") for i in range(4)]
    gate.until_started(1)
    futures.append(small.submit(gate.job, "small"))
    for name in ["big0", "small", "big1", "big2", "big3"]:
        gate.release(name)
    wait(futures, WAIT_S)
    assert gate.started == ["big0", "small", "big1", "big2", "big3"]
    assert [f.result() for f in futures] == ["big0", "big1", "big2", "big3", "small"]


def test_a_lane_with_nothing_running_gets_the_next_free_thread(scheduler):
    pool, gate = scheduler(2), Gate()
    big, small = pool.lane(), pool.lane()
    futures = [big.submit(gate.job, f"big{i}") for i in range(6)]
    assert gate.until_started(2) == ["big0", "big1"]
    futures.append(small.submit(gate.job, "small"))
    gate.release("big0")
    assert gate.until_started(3)[2] == "small"
    for name in ["small", *(f"big{i}" for i in range(1, 6))]:
        gate.release(name)
    wait(futures, WAIT_S)
    assert sorted(gate.started[3:]) == ["big2", "big3", "big4", "big5"]


def test_cancelled_and_failing_jobs_end_in_their_futures(scheduler):
    pool, gate = scheduler(1), Gate()
    lane = pool.lane()
    first = lane.submit(gate.job, "first")
    gate.until_started(1)
    dropped, failing = lane.submit(gate.job, "dropped"), lane.submit(int, "not a number")
    assert dropped.cancel()
    gate.release("first")
    with pytest.raises(ValueError):
        failing.result(WAIT_S)
    assert first.result() == "first" and gate.started == ["first"]


def test_shutdown_cancels_queued_jobs(scheduler):
    pool, gate = scheduler(1), Gate()
    lane = pool.lane()
    running, queued = lane.submit(gate.job, "running"), lane.submit(gate.job, "queued")
    gate.until_started(1)
    pool.shutdown()
    gate.release("running")
    assert running.result(WAIT_S) == "running"
    with pytest.raises(CancelledError):
        queued.result(WAIT_S)
    with pytest.raises(RuntimeError):
        lane.submit(gate.job, "late")


# -- over a real server -------------------------------------------------------------------------

BIG_RECORDS = 4000


@pytest.fixture(scope="module")
def fair_server(tmp_path_factory):
    """A started ingest server with two parser workers, batches of 50 records."""
    versions = LocalVersionStore(LocalObjectStore(tmp_path_factory.mktemp("fair"), durable=False))
    settings = IngestSettings(
        host="127.0.0.1", port=0, max_records_per_request=BIG_RECORDS, parse_batch_records=50,
        parse_workers=2, log_json=False,
    )  # fmt: skip
    with serving(lambda: create_server(settings, IngestDeps(versions))) as server:
        yield server


def _timed_ingest(address: str, dataset: str, text: str, times: dict, sent=None) -> None:
    """Ingest `text` as one CIF chunk, recording start and end times (and the reply) in `times`."""

    def messages():
        yield header_request(dataset, create_dataset=True)
        yield ingest_pb2.IngestRequest(cif=ingest_pb2.CifChunk(file_name="x.cif", text=text))
        if sent is not None:
            sent.set()

    with grpc.insecure_channel(address) as channel:
        stub = ingest_pb2_grpc.IngestServiceStub(channel)
        times["start"] = time.monotonic()
        times["reply"] = stub.Ingest(messages(), timeout=300)
        times["end"] = time.monotonic()


def test_a_one_crystal_ingest_is_not_starved_by_a_big_one(fair_server):
    """The big ingest's batches are all queued when the small one comes; the small one waits for
    one batch, not for the big one's parsing."""
    big_text = "".join(GOOD_CIF.replace("data_NaCl", f"data_n{i}") for i in range(BIG_RECORDS))
    big, small, sent = {}, {}, threading.Event()
    worker = threading.Thread(
        target=_timed_ingest, args=(fair_server.address, "big", big_text, big, sent)
    )
    worker.start()
    try:
        assert sent.wait(WAIT_S)
        time.sleep(1.0)  # the big chunk is batched and queued
        _timed_ingest(fair_server.address, "small", GOOD_CIF, small)
    finally:
        worker.join(300)
    assert (big["reply"].num_received, small["reply"].num_accepted) == (BIG_RECORDS, 1)
    assert big["start"] < small["start"] and small["end"] < big["end"]
    assert small["end"] - small["start"] < 0.2 * (big["end"] - big["start"])
