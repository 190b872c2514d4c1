"""LoopService over a real socket with fake services behind the engine (fast): start, follow,
get, list with pages, idempotent request_id, cancel between stages and resume, a restart that
resumes a running loop, every bad request refused with its status and the field named, and a
S.U.N. yield loop that fails at its start when the scorer has no hull."""

import json
import threading
import time
from types import SimpleNamespace

import grpc
import numpy as np
import pytest
from autoperi.common.v1 import common_pb2
from autoperi.ingest.v1 import ingest_pb2
from autoperi.loop.v1 import loop_pb2 as pb
from autoperi.sampler.v1 import sampler_pb2
from autoperi.training.v1 import training_pb2 as tpb
from ingest_svc.testing import serving
from storage import LocalObjectStore
from svc_kit import open_channel
from xtal import Crystal, convert

from loop_svc import (
    Evaluation,
    LoopClients,
    LoopDeps,
    LoopSettings,
    LoopSpec,
    SelectionCriteria,
    create_server,
    spec_to_request,
)
from loop_svc.client import follow, get_loop, start_loop, stub

NEW_CHECKPOINT = "f" * 64


class _NotFound(grpc.RpcError):
    def code(self):
        return grpc.StatusCode.NOT_FOUND

    def details(self):
        return "no such dataset"


class FakeIngest:
    """Branches and commits of the loop's dataset 'grow' and the held-out dataset 'held'."""

    def __init__(self):
        self.ingested, self.merged = [], []

    def branches(self, dataset):
        if dataset not in ("grow", "held"):
            raise _NotFound()
        branch = ingest_pb2.Branch(head_commit_id="c" * 64, num_crystals=4)
        return {"main": branch, **{b: branch for b, _ in self.ingested}}

    def read_crystals(self, dataset, ref, limit):
        self.branches(dataset)
        return "h" * 64, [_crystal(0)] * min(limit, 2)

    def ingest(self, dataset, branch, source, crystals, **header):
        self.ingested.append((branch, len(crystals)))
        return ingest_pb2.IngestResponse(commit_id="c" * 64, num_accepted=len(crystals))

    def merge(self, dataset, source, destination, message):
        self.merged.append(source)
        return "m" * 64


class FakeSampler:
    """Two crystals per target; blocks while `gate` is clear."""

    def __init__(self):
        self.gate, self.waiting = threading.Event(), threading.Event()
        self.gate.set()

    def sample(self, compositions, n, steps, seed, checkpoint_id):
        self.waiting.set()
        self.gate.wait(30)
        crystals = [convert.to_proto(_crystal(i + seed)) for i in range(2 * len(compositions))]
        return crystals, checkpoint_id


class FakeScorer:
    def has_hull(self):
        return False

    def score(self, crystals, dataset, ref):
        return [_scores(-1.0 - i) for i in range(len(crystals))]


class FakeTrainer:
    def __init__(self):
        self.started = []

    def start(self, *, request_id, **fields):
        self.started.append(request_id)
        return tpb.Run(run_id=f"run-{request_id}")

    def wait(self, run_id):
        run = tpb.Run(run_id=run_id, state=tpb.RUN_STATE_SUCCEEDED, step=2)
        run.latest_checkpoint.checkpoint_id = NEW_CHECKPOINT
        return run


class FakeEvaluator:
    def evaluate(self, checkpoint_id):
        return {"match_rate": 0.6 if checkpoint_id == NEW_CHECKPOINT else 0.5}


def _crystal(i: int) -> Crystal:
    lattice = np.eye(3) * (3.9 + 0.01 * i)
    frac = np.array([[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    return Crystal(lattice, frac, np.array([38, 22, 8, 8, 8]))


def _scores(energy: float) -> SimpleNamespace:
    return SimpleNamespace(
        error=None, content_hash="", energy_per_atom=energy, e_above_hull=None,
        structure_valid=True, composition_valid=True, novel=True, space_group_number=221,
        space_group_symbol="Pm-3m",
    )  # fmt: skip


@pytest.fixture
def fakes(tmp_path):
    objects = LocalObjectStore(tmp_path / "store", durable=False)
    from trainer_svc import publish_checkpoint

    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "config.yaml").write_text("model: {}\n")
    base, _ = publish_checkpoint(objects, tmp_path / "base", "base", 0, 0, {})
    ingest, sampler, trainer = FakeIngest(), FakeSampler(), FakeTrainer()

    def make_clients(spec, cache):
        return LoopClients(sampler, FakeScorer(), ingest, trainer, FakeEvaluator(), objects)

    deps = LoopDeps(objects, ingest, make_clients)
    return SimpleNamespace(deps=deps, base=base, sampler=sampler, trainer=trainer, ingest=ingest)


def _serve(fakes, state_dir):
    settings = LoopSettings(host="127.0.0.1", port=0, log_json=False, state_dir=str(state_dir))
    return serving(lambda: create_server(settings, fakes.deps))


def _request(base: str, **changes) -> pb.StartLoopRequest:
    spec = LoopSpec(
        name="t", dataset="grow", base_checkpoint=base, targets=("SrTiO3", "BaZrO3"),
        evaluation=Evaluation("held", size=2), num_rounds=1, samples_per_target=2,
        selection=SelectionCriteria(False, False, None, 2, 0.0),
    )  # fmt: skip
    request = spec_to_request(spec)
    request.fine_tune.config_yaml = "model: {}\n"
    for name, value in changes.items():
        if name == "candidates":
            del request.candidates[:]
            request.candidates.extend(value)
        elif name == "dataset":
            request.dataset.CopyFrom(value)
        else:
            setattr(request, name, value)
    return request


def _wait_state(channel, loop_id, states, timeout=30.0) -> pb.Loop:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        loop = get_loop(channel, loop_id)
        if loop.state in states:
            return loop
        time.sleep(0.05)
    raise AssertionError(f"loop {loop_id} stayed {pb.LoopState.Name(loop.state)}")


def test_a_loop_runs_to_the_end_and_is_followed_got_and_listed(fakes, tmp_path):
    with _serve(fakes, tmp_path / "loops") as server, open_channel(server.address) as channel:
        loop = start_loop(channel, _request(fakes.base, request_id="first"))
        assert loop.loop_id == "first" and loop.spec.evaluation.dataset.ref == "h" * 64
        events = list(follow(channel, "first"))
        assert events[-1].state == pb.LOOP_STATE_SUCCEEDED
        messages = " | ".join(e.message for e in events)
        assert "selected 2 of 4 candidates" in messages and "merged" in messages
        done = get_loop(channel, "first")
        [rnd] = done.rounds
        assert rnd.stage == pb.ROUND_STAGE_DONE and rnd.merged and rnd.num_selected == 2
        assert rnd.checkpoint_id == done.current_checkpoint_id == NEW_CHECKPOINT
        assert rnd.training_run_id == "run-first-round-1-try-1"
        assert (rnd.metric_before, rnd.metric_after) == (0.5, 0.6)

        again = start_loop(channel, _request(fakes.base, request_id="first"))
        assert again.loop_id == "first" and again.state == pb.LOOP_STATE_SUCCEEDED
        assert fakes.trainer.started == ["first-round-1-try-1"]  # one training run
        second = start_loop(channel, _request(fakes.base))
        assert second.loop_id != "first"
        _wait_state(channel, second.loop_id, [pb.LOOP_STATE_SUCCEEDED])

        page = stub(channel).ListLoops(pb.ListLoopsRequest(page_size=1))
        rest = stub(channel).ListLoops(pb.ListLoopsRequest(page_token=page.next_page_token))
        assert [x.loop_id for x in (*page.loops, *rest.loops)] == [second.loop_id, "first"]
        assert rest.next_page_token == ""


def test_a_cancelled_loop_stops_between_stages_and_resumes_on_request(fakes, tmp_path):
    fakes.sampler.gate.clear()
    with _serve(fakes, tmp_path / "loops") as server, open_channel(server.address) as channel:
        loop = start_loop(channel, _request(fakes.base, request_id="stopme"))
        assert fakes.sampler.waiting.wait(30)
        service = stub(channel)
        reply = service.CancelLoop(pb.CancelLoopRequest(loop_id="stopme", reason="enough"))
        assert reply.loop.state == pb.LOOP_STATE_CANCELLING
        fakes.sampler.gate.set()
        loop = _wait_state(channel, "stopme", [pb.LOOP_STATE_CANCELLED])
        assert loop.error.message == "enough" and loop.rounds[0].stage == pb.ROUND_STAGE_SAMPLING
        assert not fakes.ingest.ingested  # stopped before the next stage
        again = service.CancelLoop(pb.CancelLoopRequest(loop_id="stopme", reason="twice"))
        assert again.loop.error.message == "enough"  # idempotent

        start_loop(channel, pb.StartLoopRequest(resume_loop_id="stopme"))
        loop = _wait_state(channel, "stopme", [pb.LOOP_STATE_SUCCEEDED])
        assert loop.rounds[0].merged and fakes.ingest.ingested == [("loop-stopme-round-1", 2)]


def test_a_restarted_service_resumes_its_running_loops(fakes, tmp_path):
    fakes.sampler.gate.clear()
    with _serve(fakes, tmp_path / "loops") as server, open_channel(server.address) as channel:
        start_loop(channel, _request(fakes.base, request_id="survivor"))
        assert fakes.sampler.waiting.wait(30)
    fakes.sampler.gate.set()  # the stopped service's engine ends its stage, then stops
    journal = tmp_path / "loops" / "survivor" / "journal.json"
    deadline = time.monotonic() + 30
    while "sampling" not in json.loads(journal.read_text())["rounds"][0]["done"]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.2)
    with _serve(fakes, tmp_path / "loops") as server, open_channel(server.address) as channel:
        loop = _wait_state(channel, "survivor", [pb.LOOP_STATE_SUCCEEDED])
        assert loop.rounds[0].merged and len(fakes.ingest.ingested) == 1
        assert fakes.trainer.started == ["survivor-round-1-try-1"]


def _bad_requests(base: str):
    de_novo = sampler_pb2.SampleSpec(de_novo=sampler_pb2.DeNovoTask(), num_samples=2)
    uneven = _request(base)
    uneven.candidates[1].num_samples = 5
    pinned = _request(base)
    pinned.candidates[0].checkpoint_id = "abc"
    metric = _request(base)
    metric.evaluation.metric = "rmse"
    metric.evaluation.higher_is_better = True
    batch = _request(base)
    batch.fine_tune.num_workers, batch.fine_tune.batch_size = 2, 3
    missing = common_pb2.DatasetRef(dataset="nope")
    invalid, not_found = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND
    return [
        (_request(base, dataset=common_pb2.DatasetRef()), invalid, "dataset.dataset"),
        (_request("/etc/passwd"), invalid, "base_checkpoint_id"),
        (_request("0" * 64), not_found, "base_checkpoint_id"),
        (_request(base, num_rounds=0), invalid, "num_rounds"),
        (_request(base, candidates=[de_novo]), invalid, "candidates[0]"),
        (uneven, invalid, "candidates[1].num_samples"),
        (pinned, invalid, "candidates[0].checkpoint_id"),
        (metric, invalid, "evaluation.higher_is_better"),
        (batch, invalid, "fine_tune.batch_size"),
        (_request(base, dataset=missing), not_found, "dataset.dataset"),
        (_request(base, resume_loop_id="unknown"), not_found, "unknown"),
        (_request(base, resume_loop_id="../up"), invalid, "loop_id"),
    ]


def test_bad_requests_are_refused_with_the_field_named(fakes, tmp_path):
    with _serve(fakes, tmp_path / "loops") as server, open_channel(server.address) as channel:
        service = stub(channel)
        for request, code, field in _bad_requests(fakes.base):
            with pytest.raises(grpc.RpcError) as caught:
                service.StartLoop(request, timeout=30)
            assert caught.value.code() == code, (field, caught.value.details())
            assert field in caught.value.details() and "/etc" not in caught.value.details()
        assert not list((tmp_path / "loops").glob("*"))  # nothing was started

        start_loop(channel, _request(fakes.base, request_id="known"))
        other = _request(fakes.base, resume_loop_id="known", num_rounds=3)
        invalid, not_found = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND
        for call, request, code in [
            (service.StartLoop, other, invalid),
            (service.GetLoop, pb.GetLoopRequest(loop_id="missing"), not_found),
            (service.GetLoop, pb.GetLoopRequest(), invalid),
            (service.CancelLoop, pb.CancelLoopRequest(loop_id="missing"), not_found),
            (service.ListLoops, pb.ListLoopsRequest(page_token="x"), invalid),
        ]:
            with pytest.raises(grpc.RpcError) as caught:
                call(request, timeout=30)
            assert caught.value.code() == code, caught.value.details()
        for loop_id, code in [
            ("missing", grpc.StatusCode.NOT_FOUND),
            ("a/b", grpc.StatusCode.INVALID_ARGUMENT),
        ]:  # the stream's status is its unary twin's
            with pytest.raises(grpc.RpcError) as caught:
                list(service.StreamLoopEvents(pb.StreamLoopEventsRequest(loop_id=loop_id)))
            assert caught.value.code() == code


def test_a_yield_loop_fails_at_its_start_without_a_scorer_hull(fakes, tmp_path):
    request = _request(fakes.base, request_id="nohull")
    request.evaluation.objective = pb.EVALUATION_OBJECTIVE_SUN_YIELD
    with _serve(fakes, tmp_path / "loops") as server, open_channel(server.address) as channel:
        start_loop(channel, request)
        loop = _wait_state(channel, "nohull", [pb.LOOP_STATE_FAILED])
        assert "needs a scorer with a hull reference" in loop.error.message
        assert not loop.rounds and not fakes.sampler.waiting.is_set()  # nothing was sampled
        assert loop.spec.evaluation.objective == pb.EVALUATION_OBJECTIVE_SUN_YIELD
