"""One de novo round judged by the S.U.N. yield, end to end on Perov-5: `perov_5_dng` samples
Mg-Rh-N candidates in this process, the scorer (real CHGNet, relaxations capped at 30 steps)
relaxes them against a tiny hull of the Perov-5 train crystals of that space relaxed the same
way, the relaxed selection is ingested, a real two-step fine-tune makes the new checkpoint, and
both checkpoints' yields (8 fresh samples each) decide the merge with the CSP guard N/A. A second
engine on the same journal redoes evaluating and merging from the cached yields without scoring.

The fine-tune runs `autoperi_model.train` in this process (`LocalTrainer`, the trainer service's
start / wait contract) instead of the trainer service, whose Ray Train start-up alone would not
fit the test's time (~60 s on 2 cores); `resume_test` covers the trainer service.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from autoperi.training.v1 import training_pb2 as tpb

from loop_svc import (
    ChemicalSpace,
    CspEvaluator,
    Evaluation,
    FineTune,
    GrpcScorer,
    IngestClient,
    Journal,
    LocalSampler,
    LoopClients,
    LoopEngine,
    LoopSpec,
    SelectionCriteria,
    round_to_proto,
    write_report,
)
from loop_svc._yield import from_bits
from loop_svc._yield_eval import read_scored
from loop_svc.conftest import seeded_store

DNG = Path(__file__).resolve().parents[3] / "checkpoints" / "perov_5_dng"
DATASET = "yield-perov"
SPACE = ChemicalSpace(("Mg", "Rh", "N"), ("Mg", "Rh", "N"), 5, 5)
RELAX_STEPS = 30


class LocalTrainer:
    """start / wait of the trainer service, training in this process: the round commit's
    crystals featurised here, `autoperi_model.train` warm-started from the current checkpoint,
    the checkpoint published to the object store."""

    def __init__(self, ingest: IngestClient, objects, root: Path) -> None:
        self.ingest, self.objects, self.root, self.runs = ingest, objects, root, {}

    def start(self, *, train_dataset, config_yaml, resume_from_checkpoint_id, request_id, **_):
        from autoperi_model import Config, TrainingData, train
        from featurize import FeaturizerConfig, featurize_split, load_shard
        from trainer_svc import publish_checkpoint

        from loop_svc._clients import fetch_checkpoint_dir

        if request_id not in self.runs:
            _, crystals = self.ingest.read_crystals(*train_dataset, 0)
            split = featurize_split(
                crystals, self.root / request_id / "features", FeaturizerConfig()
            )
            shards = [load_shard(p) for p in split.shard_paths]
            base = fetch_checkpoint_dir(self.objects, resume_from_checkpoint_id, self.root)
            config = Config.model_validate(yaml.safe_load(config_yaml))
            config = config.updated(train={"init_from": str(base)})
            out = self.root / request_id / "checkpoint"
            train(config, TrainingData.from_shards(shards, [], train_dataset[1]), out)
            ck, _ = publish_checkpoint(self.objects, out, request_id, config.train.max_steps, 0, {})
            self.runs[request_id] = ck
        return tpb.Run(run_id=request_id)

    def wait(self, run_id: str) -> tpb.Run:
        run = tpb.Run(run_id=run_id, state=tpb.RUN_STATE_SUCCEEDED, step=2)
        run.latest_checkpoint.checkpoint_id = self.runs[run_id]
        return run


class CountingScorer:
    """The real scorer, counting its `score` calls."""

    def __init__(self, scorer: GrpcScorer) -> None:
        self.scorer, self.calls = scorer, 0

    def has_hull(self) -> bool:
        return self.scorer.has_hull()

    def score(self, *args, **kwargs):
        self.calls += 1
        return self.scorer.score(*args, **kwargs)


@pytest.fixture(scope="module")
def world(data_dir, tmp_path_factory):
    """(LoopClients, seed crystals, hull crystals): ingest and scorer servers over one store;
    the scorer's hull holds the Perov-5 train crystals of the space (the first 400 train crystals
    hold MgRhN3 twice and Mg2N3), relaxed as the scorer relaxes; the dataset holds them and six
    other train crystals."""
    from scorer_svc import ScoreOptions, ScorerSettings, score_in_process
    from trainer_svc.testing import perov_subset

    root = tmp_path_factory.mktemp("yield")
    train = perov_subset(data_dir, 400)
    hull_crystals = [c for c in train if set(c.symbols) <= set(SPACE.elements)]
    assert len(hull_crystals) >= 2
    settings = ScorerSettings(warm_start=False, max_relax_steps=RELAX_STEPS, log_json=False)
    scores = score_in_process(hull_crystals, ScoreOptions(relax=True), settings)
    rows = [{"formula": c.formula, "energy_per_atom": s.energy_per_atom} for c, s in
            zip(hull_crystals, scores, strict=True)]  # fmt: skip
    (root / "hull.json").write_text(json.dumps({"results": rows}))
    seed = train[:6] + hull_crystals
    with seeded_store(
        root, data_dir, DATASET, 0, seed=seed, hull_entries=str(root / "hull.json"),
        hull_source="perov-5 train Mg-Rh-N", max_relax_steps=RELAX_STEPS,
    ) as store:  # fmt: skip
        ingest = IngestClient(store.ingest)
        yield (
            LoopClients(
                sampler=LocalSampler(store.objects, root / "cache"),
                scorer=CountingScorer(GrpcScorer(store.scorer, relax_steps=RELAX_STEPS)),
                ingest=ingest,
                trainer=LocalTrainer(ingest, store.objects, root / "train"),
                evaluator=CspEvaluator(
                    perov_subset(data_dir, 1, "val"), store.objects, root / "cache"
                ),
                objects=store.objects,
            ),
            seed,
            hull_crystals,
        )


def _spec() -> LoopSpec:
    evaluation = Evaluation("held-out", objective="sun_yield", yield_samples=8,
                            bootstrap_resamples=500)  # fmt: skip
    return LoopSpec(
        name="yield", dataset=DATASET, base_checkpoint=str(DNG), targets=(),
        chemical_space=SPACE, evaluation=evaluation, num_rounds=1, samples_per_target=4,
        sample_steps=10, selection=SelectionCriteria(False, False, None, 2, 0.0),
        fine_tune=FineTune(max_steps=2, batch_size=4),
    )  # fmt: skip


@pytest.mark.slow
def test_a_de_novo_round_is_judged_by_its_sun_yield(world, tmp_path):
    clients, seed, hull_crystals = world
    spec, ingest = _spec(), clients.ingest
    seed_head = ingest.branches(DATASET)["main"].head_commit_id
    journal = Journal.open(tmp_path, "y", spec.to_json())
    data = LoopEngine(spec, clients, journal).run()
    [rnd] = data["rounds"]
    assert data["state"] == "succeeded" and data["seed_commit_id"] == seed_head
    assert rnd["num_generated"] == 4 and rnd["num_relaxed"] == rnd["num_scored"] == 4
    _check_relaxed_ingest(clients, tmp_path, rnd, seed)
    before, after = (
        data["yields"][data["base_checkpoint_id"]],
        data["yields"][rnd["checkpoint_id"]],
    )
    for record in (before, after):
        _check_record(record, tmp_path, spec, hull_crystals + seed)
    assert rnd["yield_before"] == before["yield"] and rnd["yield_after"] == after["yield"]
    assert rnd["yield_diff_low"] <= rnd["yield_diff_high"] and rnd["num_sun"] == after["num_sun"]
    assert rnd["metric_before"] is None and "CSP guard N/A" in rnd["decision"]
    assert rnd["merged"] == (rnd["yield_diff_low"] > 0), rnd["decision"]
    message = round_to_proto(rnd)
    assert message.HasField("yield_diff_low") and not message.HasField("metric_before")
    _check_cached_yields(spec, clients, tmp_path, rnd)
    _check_report(journal, tmp_path, after)


def _check_relaxed_ingest(clients, tmp_path, rnd, seed) -> None:
    """The branch holds the seed and the relaxed selected crystals, not the sampled ones."""
    from loop_svc import Candidates

    files = tmp_path / "y" / "round-1"
    sampled = Candidates.read(files / "candidates.pb")
    relaxed = Candidates.read(files / "relaxed.pb")
    chosen = rnd["selected"]
    assert rnd["num_selected"] == 2 and rnd["ingested_relaxed"] == 2
    assert rnd["selected_hashes"] == [relaxed[i].content_hash() for i in chosen]
    assert not {sampled[i].content_hash() for i in chosen} & set(rnd["selected_hashes"])
    branch = set(clients.ingest.content_hashes(DATASET, rnd["branch"]))
    assert branch == {c.content_hash() for c in seed} | set(rnd["selected_hashes"])


def _check_record(record: dict, tmp_path: Path, spec: LoopSpec, known) -> None:
    """Indicators that agree with the record's own E_hull values, the seed's hashes and the
    chemical space; yield = 1000 x mean S.U.N."""
    stable, unique, novel, sun = (from_bits(record[k]) for k in ("stable", "unique", "novel",
                                                                   "sun"))  # fmt: skip
    assert record["n"] == len(sun) == 8 and record["num_scored"] == 8
    e_hull = np.array([np.nan if e is None else e for e in record["e_above_hull"]])
    assert np.array_equal(stable, np.nan_to_num(e_hull, nan=np.inf) <= 0.08)
    assert np.array_equal(sun, stable & unique & novel) and unique[0]
    assert record["yield"] == pytest.approx(1000 * sun.mean()) and record["num_sun"] == sun.sum()
    crystals = read_scored(tmp_path / "y", record)
    assert all(sorted(set(c.symbols)) == sorted(SPACE.elements) for c in crystals)
    seen = {c.content_hash() for c in known}
    assert not any(novel[i] for i, c in enumerate(crystals) if c.content_hash() in seen)


def _check_cached_yields(spec, clients, tmp_path, rnd) -> None:
    """Evaluating and merging again in a new engine read both yields from the journal."""
    journal = Journal.open(tmp_path, "y", spec.to_json())
    again = journal.round(1)
    again.update(stage="evaluating", done=again["done"][:-2], merged=False)
    journal.data["current_checkpoint_id"] = journal.data["base_checkpoint_id"]
    journal.save()
    calls = clients.scorer.calls
    [redone] = LoopEngine(spec, clients, journal).run()["rounds"]
    assert clients.scorer.calls == calls
    for key in ("yield_before", "yield_after", "yield_diff_low", "yield_diff_high", "decision"):
        assert redone[key] == rnd[key], key


def _check_report(journal, tmp_path, after) -> None:
    out = tmp_path / "report"
    summary = write_report(journal.data, journal.directory, out).read_text()
    assert "S.U.N. yield" in summary and "difference CI" in summary
    page = (out / "round-1.md").read_text()
    assert "## S.U.N. yield" in page and "CSP guard N/A" in page
    cif = out / "round-1_sun.cif"
    assert cif.exists() == (after["num_sun"] > 0)
    if after["num_sun"]:
        assert cif.read_text().count("data_sample") == after["num_sun"]
