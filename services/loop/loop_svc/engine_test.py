"""A round's sample -> score -> select -> ingest stages against real servers (ingest and scorer
on sockets, the in-process sampler on the shipped checkpoint): the sampler's messages are stored
and handed to the scorer and the ingest as they came, an uninterrupted round never reads its
candidates back, and a resumed round reads them from its file. Slow (~15 s: the model, CHGNet):
in `make test`, candidates_test and the scorer's client test cover the pieces."""

import pytest
from autoperi.crystal.v1 import crystal_pb2
from trainer_svc.testing import perov_subset

from loop_svc import (
    CspEvaluator,
    Evaluation,
    GrpcScorer,
    IngestClient,
    Journal,
    LocalSampler,
    LoopClients,
    LoopEngine,
    LoopSpec,
    SelectionCriteria,
    TrainerClient,
    round_branch,
)
from loop_svc.conftest import CHECKPOINT, seeded_store

DATASET = "engine-perov"
FIRST_STAGES = ("sampling", "scoring", "selecting", "ingesting")


@pytest.fixture(scope="module")
def clients(data_dir, tmp_path_factory):
    """LoopClients over real ingest and scorer servers sharing one store, whose dataset
    DATASET holds 8 Perov-5 train crystals; the sampler runs in this process."""
    root = tmp_path_factory.mktemp("engine")
    with seeded_store(root, data_dir, DATASET, 8) as store:
        yield LoopClients(
            sampler=LocalSampler(store.objects, root / "cache"),
            scorer=GrpcScorer(store.scorer),
            ingest=IngestClient(store.ingest),
            trainer=TrainerClient("127.0.0.1:1"),  # not reached by these stages
            evaluator=CspEvaluator(perov_subset(data_dir, 1, "val"), store.objects, root / "cache"),
            objects=store.objects,
        )


def _spec() -> LoopSpec:
    return LoopSpec(
        name="engine", dataset=DATASET, base_checkpoint=str(CHECKPOINT),
        targets=("SrTiO3", "BaZrO3"), evaluation=Evaluation("held-out"), num_rounds=1,
        samples_per_target=2, sample_steps=20,
        selection=SelectionCriteria(require_valid=False, require_novel=False),
    )  # fmt: skip


def _run(engine: LoopEngine, stages) -> dict:
    """Round 1's `stages`, in order, journaled as `LoopEngine.run` journals them."""
    rnd = engine.journal.round(1)
    rnd["branch"] = round_branch(engine.journal.loop_id, 1)
    for stage in stages:
        getattr(engine, f"_{stage}")(1, rnd)
        rnd["done"].append(stage)
        engine.journal.save()
    return rnd


@pytest.mark.slow
def test_a_round_hands_the_sampled_messages_on_as_they_came(clients, tmp_path):
    spec = _spec()
    engine = LoopEngine(spec, clients, Journal.open(tmp_path, "a", spec.to_json()))
    engine._base()
    _run(engine, FIRST_STAGES[:1])
    stored = tmp_path / "a" / "round-1" / "candidates.pb"
    checkpoint = engine.journal.data["base_checkpoint_id"]
    messages, _ = clients.sampler.sample(spec.targets, 2, 20, spec.seed + 1000, checkpoint)
    assert stored.read_bytes() == crystal_pb2.CrystalBatch(crystals=messages).SerializeToString()
    aside = stored.rename(stored.with_suffix(".aside"))  # never read back by this round
    rnd = _run(engine, FIRST_STAGES[1:])
    assert rnd["num_generated"] == 4 and rnd["num_scored"] == 4 and rnd["num_selected"] > 0

    candidates = engine._candidates(1)
    scored = [r["content_hash"] for r in engine._scores(1)]
    assert scored == [c.content_hash() for c in candidates]  # the scorer got these messages
    ingest, selected = clients.ingest, rnd["selected_hashes"]
    assert rnd["num_ingested"] == len(selected) and rnd["num_duplicates"] == 0
    main = set(ingest.content_hashes(DATASET, "main"))
    assert set(ingest.content_hashes(DATASET, rnd["branch"])) == main | set(selected)

    aside.rename(stored)
    resumed = LoopEngine(spec, clients, Journal.open(tmp_path, "a", spec.to_json()))
    assert resumed._candidates(1).messages == tuple(messages)
    again = _run(resumed, ("ingesting",))
    assert again["num_ingested"] == 0 and again["num_duplicates"] == len(selected)
