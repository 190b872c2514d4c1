"""The active-learning loop: for each round sample -> score -> select -> ingest -> fine-tune ->
evaluate -> merge (only if the objective says so, `_objectives`: the held-out metric improves by
`min_improvement`, or the S.U.N. yield of fresh samples improves with the CSP guard holding).

With the S.U.N. yield objective, candidates are scored relaxed and their relaxed crystals are
ingested (a candidate the scorer returned no relaxed crystal for is ingested as sampled; its
score row says `"relaxed": false`); the loop fails at its start when the scorer has no hull; the
seed dataset commit (the branch's head when the loop starts) is the novelty reference of every
yield, and yields are cached per checkpoint in the journal (`yields`).

Idempotent and resumable. Each stage's results go into the journal before the stage is marked
done, and every stage can be redone safely after a crash: sampling is seeded by (seed, round) and
its candidates are kept in a file (the sampler's messages, which later stages send on as they are;
only a resumed round reads them back); scoring and selection are pure; the ingest dedups by
content hash; the training run's request_id is derived from (loop id, round, attempt), so a retried
StartRun returns the same run; evaluation is seeded (and cached per checkpoint); merging a merged
branch is a no-op.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml
from autoperi.training.v1 import training_pb2 as tpb

from loop_svc._candidates import FILE_NAME, Candidates, write_atomic
from loop_svc._clients import LoopClients, fetch_checkpoint_dir
from loop_svc._errors import LoopFailed, LoopStopped
from loop_svc._journal import STAGES, Journal
from loop_svc._objectives import MetricObjective, YieldObjective
from loop_svc._rounds import candidate_scores, fingerprint_fn, relaxed_messages, score_row
from loop_svc._select import SelectionCriteria, select_candidates
from loop_svc._spec import LoopSpec

log = logging.getLogger("loop_svc.engine")


_NO_HULL = "the scorer has no hull: ranked by energy above the round's lowest of its formula"
RELAXED_FILE = "relaxed.pb"  # a round's scored (relaxed) crystals, aligned with its candidates


def round_branch(loop_id: str, index: int) -> str:
    """The dataset branch of a round (ingest branch names allow no '/': 'loop-<id>-round-<k>')."""
    return f"loop-{loop_id}-round-{index}"


class LoopEngine:
    """Runs (or resumes) one loop; `run()` returns the journal's data when all rounds are done.

    `should_stop` is asked before every stage; when it answers True, `run()` raises LoopStopped
    and leaves the journal in state running (the caller records a cancel, or resumes later).
    """

    def __init__(
        self,
        spec: LoopSpec,
        clients: LoopClients,
        journal: Journal,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        self.spec, self.clients, self.journal = spec, clients, journal
        self.should_stop = should_stop
        self.cache = journal.directory / "checkpoints"
        self._kept: tuple[int, Candidates] | None = None  # the current round's, once known
        self._seed_crystals: list | None = None  # the yield's novelty reference, once read
        evaluation = spec.evaluation
        self.objective = (
            YieldObjective(evaluation, self._evaluation, self._yield, spec.seed)
            if evaluation.sun_yield
            else MetricObjective(evaluation, self._evaluation)
        )

    def run(self) -> dict[str, Any]:
        data = self.journal.data
        data["state"], data["error"] = "running", ""
        self.journal.save()
        try:
            self._base()
            self._yield_preconditions()
            for index in range(1, self.spec.num_rounds + 1):
                self._round(index)
        except LoopStopped:
            raise
        except Exception as exc:
            data["state"], data["error"] = "failed", f"{type(exc).__name__}: {exc}"
            self.journal.save()
            raise
        data["state"], data["finished"] = "succeeded", time.time()
        self.journal.save()
        return data

    # -- rounds ----------------------------------------------------------------------------

    def _base(self) -> None:
        """Store the base checkpoint once; it is the first round's current checkpoint."""
        data = self.journal.data
        if data["base_checkpoint_id"]:
            return
        from trainer_svc import is_sha256, publish_checkpoint, read_manifest

        base = self.spec.base_checkpoint
        if is_sha256(base):
            read_manifest(self.clients.objects, base)
            checkpoint_id = base
        else:
            objects = self.clients.objects
            checkpoint_id, _ = publish_checkpoint(objects, Path(base), "base", 0, 0, {})
        data["base_checkpoint_id"] = data["current_checkpoint_id"] = checkpoint_id
        self.journal.save()

    def _yield_preconditions(self) -> None:
        """The yield objective needs a scorer hull (LoopFailed otherwise), and records the seed
        dataset commit once: the branch's head when the loop starts."""
        if not self.spec.evaluation.sun_yield:
            return
        if not self.clients.scorer.has_hull():
            raise LoopFailed(
                "the S.U.N. yield objective needs a scorer with a hull reference (E_hull decides"
                " stability): start the scorer with hull_entries (AUTOPERI_SCORER_HULL_ENTRIES)"
            )
        data = self.journal.data
        if not data.get("seed_commit_id"):
            head = self.clients.ingest.branches(self.spec.dataset)[self.spec.branch]
            data["seed_commit_id"] = head.head_commit_id
            self.journal.save()

    def _round(self, index: int) -> None:
        rnd = self.journal.round(index)
        if rnd["stage"] == "done":
            return
        rnd.setdefault("started", time.time())
        rnd["branch"] = round_branch(self.journal.loop_id, index)
        for stage in STAGES:
            if stage in rnd["done"]:
                continue
            if self.should_stop():
                raise LoopStopped(f"stopped before round {index}: {stage}")
            rnd["stage"] = stage
            self.journal.save()
            log.info("loop %s round %d: %s", self.journal.loop_id, index, stage)
            getattr(self, f"_{stage}")(index, rnd)
            rnd["done"].append(stage)
            self.journal.save()
        rnd["stage"], rnd["finished"] = "done", time.time()
        self.journal.save()

    def _files(self, index: int) -> Path:
        path = self.journal.directory / f"round-{index}"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _candidates(self, index: int) -> Candidates:
        """The round's candidates: as sampled in this process, else (a resumed round) its file."""
        if self._kept is None or self._kept[0] != index:
            self._kept = (index, Candidates.read(self._files(index) / FILE_NAME))
        return self._kept[1]

    def _scores(self, index: int) -> list[dict[str, Any]]:
        return json.loads((self._files(index) / "scores.json").read_text())

    def _ingestable(self, index: int) -> Candidates:
        """What the round ingests: its relaxed crystals (yield objective), else its candidates."""
        if not self.spec.evaluation.sun_yield:
            return self._candidates(index)
        return Candidates.read(self._files(index) / RELAXED_FILE)

    # -- stages ----------------------------------------------------------------------------

    def _sampling(self, index: int, rnd: dict) -> None:
        spec, checkpoint = self.spec, self.journal.data["current_checkpoint_id"]
        sampler, seed = self.clients.sampler, spec.seed + 1000 * index
        if spec.chemical_space is not None:
            messages, used = sampler.sample_de_novo(
                spec.chemical_space, spec.samples_per_target, spec.sample_steps, seed, checkpoint
            )
        else:
            messages, used = sampler.sample(
                spec.targets, spec.samples_per_target, spec.sample_steps, seed, checkpoint
            )
        candidates = Candidates(messages)
        candidates.write(self._files(index) / FILE_NAME)
        self._kept = (index, candidates)
        rnd.update(num_generated=len(candidates), sampled_checkpoint_id=used)
        rnd["current_checkpoint_id"] = checkpoint

    def _scoring(self, index: int, rnd: dict) -> None:
        candidates, spec, relax = self._candidates(index), self.spec, self.spec.evaluation.sun_yield
        args, scorer = (candidates.messages, spec.dataset, spec.branch), self.clients.scorer
        scores = scorer.score(*args, relax=True) if relax else scorer.score(*args)
        rows = [score_row(c, s) for c, s in zip(candidates, scores, strict=True)]
        if relax:
            rnd["num_relaxed"] = self._keep_relaxed(index, candidates, scores, rows)
        write_atomic(self._files(index) / "scores.json", json.dumps(rows).encode())
        rnd.update(
            num_scored=sum(not r["error"] for r in rows),
            num_valid=sum(r["structure_valid"] and r["composition_valid"] for r in rows),
            num_novel=sum(r["novel"] is True for r in rows),
        )

    def _keep_relaxed(self, index: int, candidates: Candidates, scores, rows: list) -> int:
        """Store the round's relaxed crystals (what it ingests) and mark each row `relaxed`
        (False: the scorer sent no relaxed crystal, the candidate is kept as sampled); how many
        are relaxed."""
        messages, relaxed = relaxed_messages(candidates, scores)
        Candidates(messages).write(self._files(index) / RELAXED_FILE)
        for row, flag in zip(rows, relaxed, strict=True):
            row["relaxed"] = flag
        return sum(relaxed)

    def _selecting(self, index: int, rnd: dict) -> None:
        criteria, notes, hull = self.spec.selection, [], self.clients.scorer.has_hull()
        if not hull:
            notes.append(_NO_HULL)
            if criteria.max_e_above_hull is not None:
                criteria = SelectionCriteria(**{**asdict(criteria), "max_e_above_hull": None})
                notes.append("the scorer has no hull: the E_hull threshold was not applied")
        crystals = self._candidates(index)
        scores = candidate_scores(self._scores(index), per_composition=not hull)
        selection = select_candidates(scores, criteria, fingerprint_fn(crystals))
        reasons: dict[str, int] = {}
        ingestable = self._ingestable(index)
        for reason in selection.dropped.values():
            reasons[reason] = reasons.get(reason, 0) + 1
        rnd.update(
            selected=list(selection.selected),
            selected_hashes=[ingestable[i].content_hash() for i in selection.selected],
            selection_counts=selection.counts,
            dropped=reasons,
            num_selected=len(selection.selected),
            selection_notes=notes,
        )

    def _ingesting(self, index: int, rnd: dict) -> None:
        chosen = self._ingestable(index).chosen(rnd["selected"])
        ingest, spec = self.clients.ingest, self.spec
        if spec.evaluation.sun_yield:
            rows = self._scores(index)
            relaxed = sum(rows[i]["relaxed"] for i in rnd["selected"])
            rnd.update(ingested_relaxed=relaxed, ingested_unrelaxed=len(chosen) - relaxed)
        reply = ingest.ingest(
            spec.dataset, rnd["branch"], spec.branch, chosen,
            message=f"loop {self.journal.loop_id} round {index}: {len(chosen)} selected",
            metadata={"loop_id": self.journal.loop_id, "round": str(index)},
        )  # fmt: skip
        head = ingest.branches(spec.dataset)[rnd["branch"]]
        rnd.update(
            ingest_commit_id=reply.commit_id or head.head_commit_id,
            num_ingested=int(reply.num_accepted),
            num_duplicates=int(reply.num_duplicates),
            branch_num_crystals=int(head.num_crystals),
        )

    def _training(self, index: int, rnd: dict) -> None:
        if not rnd["selected"]:
            rnd.update(checkpoint_id="", training_skipped="nothing was selected")
            return
        attempt = rnd.get("training_attempt", 1)
        tune, loop_id = self.spec.fine_tune, self.journal.loop_id
        run = self.clients.trainer.start(
            name=f"loop {self.spec.name} round {index}",
            config_yaml=self._fine_tune_yaml(),
            train_dataset=(self.spec.dataset, rnd["ingest_commit_id"]),
            resume_from_checkpoint_id=self.journal.data["current_checkpoint_id"],
            resources=tpb.Resources(num_workers=tune.num_workers),
            seed=self.spec.seed + index,
            max_failures=1,
            labels={"loop_id": loop_id, "round": str(index)},
            request_id=f"{loop_id}-round-{index}-try-{attempt}",
        )
        rnd["training_run_id"] = run.run_id
        self.journal.save()  # the run id is known before the (long) wait
        final = self.clients.trainer.wait(run.run_id)
        if final.state != tpb.RUN_STATE_SUCCEEDED or not final.latest_checkpoint.checkpoint_id:
            rnd["training_attempt"] = attempt + 1  # a resume starts a new run
            state = tpb.RunState.Name(final.state)
            raise LoopFailed(f"training run {run.run_id} ended {state}: {final.error.message}")
        rnd.update(checkpoint_id=final.latest_checkpoint.checkpoint_id, training_step=final.step)
        rnd["training_loss"] = final.latest_metrics.get("loss")

    def _fine_tune_yaml(self) -> str:
        """The fine-tuning config: the spec's YAML or the base's, with train overrides."""
        tune = self.spec.fine_tune
        if tune.config_yaml:
            config = yaml.safe_load(tune.config_yaml)
        else:
            base = fetch_checkpoint_dir(
                self.clients.objects, self.journal.data["base_checkpoint_id"], self.cache
            )
            config = yaml.safe_load((base / "config.yaml").read_text())
        config["train"] = {
            **config.get("train", {}),
            "max_steps": tune.max_steps, "batch_size": tune.batch_size,
            "lr": tune.learning_rate, "min_lr": min(tune.learning_rate, 1e-5),
            "warmup_steps": 0, "ema_decay": tune.ema_decay, "init_from": None,
            "checkpoint_every_steps": tune.max_steps, "log_every_steps": 1, "progress": False,
        }  # fmt: skip
        return yaml.safe_dump(config)

    def _evaluating(self, index: int, rnd: dict) -> None:
        if not rnd["checkpoint_id"]:
            return
        before = self.journal.data["current_checkpoint_id"]
        rnd.update(self.objective.evaluate(before, rnd["checkpoint_id"]))

    def _evaluation(self, checkpoint_id: str) -> dict[str, float]:
        """Held-out metrics of a checkpoint, computed once per checkpoint (kept in the journal);
        {} for a checkpoint that serves no CSP."""
        known = self.journal.data["evaluations"]
        if checkpoint_id not in known:
            known[checkpoint_id] = self.clients.evaluator.evaluate(checkpoint_id)
            self.journal.save()
        return known[checkpoint_id]

    def _yield(self, checkpoint_id: str) -> dict[str, Any]:
        """The S.U.N. yield record of a checkpoint (`_yield_eval`), computed once per checkpoint
        (kept in the journal, so a resumed loop does not draw and relax again)."""
        known = self.journal.data.setdefault("yields", {})
        if checkpoint_id not in known:
            from loop_svc._evaluate import LocalSampler
            from loop_svc._yield_eval import YieldEvaluator

            local = LocalSampler(self.clients.objects, self.cache)
            evaluator = YieldEvaluator(
                self.spec, self.clients.scorer, local.generator, self._seed_reference,
                self.journal.directory / "yields",
            )  # fmt: skip
            known[checkpoint_id] = evaluator.evaluate(checkpoint_id)
            self.journal.save()
        return known[checkpoint_id]

    def _seed_reference(self) -> list:
        """The crystals of the seed dataset commit (the yield's novelty reference), read once."""
        if self._seed_crystals is None:
            commit = self.journal.data["seed_commit_id"]
            _, self._seed_crystals = self.clients.ingest.read_crystals(self.spec.dataset, commit, 0)
        return self._seed_crystals

    def _merging(self, index: int, rnd: dict) -> None:
        if not rnd["checkpoint_id"]:
            rnd.update(merged=False, decision="not merged: nothing was selected this round")
            return
        merge, decision = self.objective.decide(rnd)
        if not merge:
            rnd.update(merged=False, decision=decision)
            return
        commit = self.clients.ingest.merge(
            self.spec.dataset, rnd["branch"], self.spec.branch,
            f"loop {self.journal.loop_id} round {index}: {decision.removeprefix('merged: ')}",
        )  # fmt: skip
        rnd.update(merged=True, merge_commit_id=commit, decision=decision)
        self.journal.data["current_checkpoint_id"] = rnd["checkpoint_id"]
