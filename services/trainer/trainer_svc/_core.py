"""TrainerCore: validates and queues runs, launches them on Ray Train, follows and cancels them.

Each run executes on a thread of a bounded pool (`max_concurrent_runs`): resolve the data, create
the run's RunControl actor, `TorchTrainer.fit()`; a monitor thread drains the actor's events
into the RunRecord every `poll_s`. Records are persisted (RunStore) on every state change and
checkpoint and at most every few seconds for metrics.
"""

import logging
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import ray
from autoperi.training.v1 import training_pb2 as pb
from storage import ObjectNotFound, ObjectStore
from svc_kit import FailedPrecondition, InvalidInput, NotFound, TooLarge, public_text

from trainer_svc._featurestore import FeatureStoreClient
from trainer_svc._objects import names_blob, read_manifest, ref_exists, shards_version
from trainer_svc._runs import RunRecord, timestamp
from trainer_svc._settings import TrainerSettings
from trainer_svc._spec import RunPlan, plan_run
from trainer_svc._store import RunStore

log = logging.getLogger("trainer_svc.core")
PERSIST_EVERY_S = 2.0
DEFAULT_PAGE = 50


class TrainerCore:
    """Training runs over an object store (records, checkpoints) and a Ray cluster."""

    def __init__(
        self, objects: ObjectStore, settings: TrainerSettings, featurestore: FeatureStoreClient
    ) -> None:
        self.objects, self.settings, self.featurestore = objects, settings, featurestore
        self.store = RunStore(objects)
        self.records: dict[str, RunRecord] = {}
        self._lock, self._start_lock = threading.Lock(), threading.Lock()
        self._executor = ThreadPoolExecutor(settings.max_concurrent_runs, "trainer-run")
        for run, events in self.store.load_all():
            record = RunRecord(run, events)
            self.records[run.run_id] = record
            if not record.terminal:
                problem = ("interrupted", "the trainer service stopped while the run was active")
                record.set_state(pb.RUN_STATE_FAILED, problem[1], problem)
                self._persist(record)

    def close(self) -> None:
        """Queue no more runs and cancel the active ones (their workers stop at the next log
        step), so a stopping service does not wait for whole runs."""
        self._executor.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            active = [r for r in self.records.values() if not r.terminal]
        for record in active:
            self.cancel(record.run.run_id, "the trainer service is shutting down")

    # -- RPC-facing operations (blocking; the servicer runs them in threads) -----------------

    def start(self, request: pb.StartRunRequest) -> pb.Run:
        """Validate and queue a run; the existing run for a repeated request_id."""
        if request.request_id and (known := self._by_request(request.request_id)) is not None:
            return known.snapshot()
        plan = plan_run(request)
        spec = self._resolve(request, plan)
        with self._start_lock:  # one request id -> one run, also for concurrent retries
            if request.request_id and (known := self._by_request(request.request_id)):
                return known.snapshot()
            run_id = uuid.uuid4().hex[:16]
            if request.request_id:
                owner = self.store.claim_request(request.request_id, run_id)
                if owner != run_id:
                    return self.get(owner)  # claimed by another trainer process
            run = pb.Run(run_id=run_id, name=request.name, state=pb.RUN_STATE_PENDING, spec=spec)
            run.created.CopyFrom(timestamp())
            run.max_steps = plan.config.train.max_steps
            record = RunRecord(run, plan=plan)
            with self._lock:
                self.records[run_id] = record
        self._persist(record)
        self._executor.submit(self._execute, record)
        log.info("queued run %s (%s)", run_id, request.name)
        return record.snapshot()

    def get(self, run_id: str) -> pb.Run:
        return self.record(run_id).snapshot()

    def record(self, run_id: str) -> RunRecord:
        with self._lock:
            record = self.records.get(run_id)
        if record is None:
            raise NotFound(f"no run {run_id!r}")
        return record

    def list(self, states, labels, page_size: int, page_token: str) -> tuple[list[pb.Run], str]:
        """Runs newest first, filtered by state and labels, one page; (runs, next token)."""
        try:
            offset = int(page_token or 0)
        except ValueError:
            raise InvalidInput(f"invalid page_token {page_token!r}") from None
        with self._lock:
            runs = [r.snapshot() for r in self.records.values()]
        runs = [
            r
            for r in runs
            if (not states or r.state in states)
            and all(r.spec.labels.get(k) == v for k, v in labels.items())
        ]
        runs.sort(key=lambda r: (r.created.ToNanoseconds(), r.run_id), reverse=True)
        size = page_size or DEFAULT_PAGE
        page = runs[offset : offset + size]
        return page, str(offset + size) if offset + size < len(runs) else ""

    def cancel(self, run_id: str, reason: str) -> pb.Run:
        """Ask a run to stop (idempotent): CANCELLED at once if not launched, else CANCELLING."""
        record = self.record(run_id)
        message = f"cancelled: {reason}" if reason else "cancelled"
        with record.lock:
            if record.terminal or record.cancel_requested:
                return record.snapshot()
            record.cancel_requested = True
            if not record.launched:
                record.set_state(pb.RUN_STATE_CANCELLED, message)
            else:
                record.set_state(pb.RUN_STATE_CANCELLING, message)
                if record.control is not None:
                    record.control.cancel.remote()
        self._persist(record)
        return record.snapshot()

    def worker_pids(self, run_id: str) -> dict[int, int]:
        """rank -> pid of the run's current workers (for operators and tests)."""
        record = self.record(run_id)
        with record.lock:
            return dict(record.worker_pids)

    # -- validation that needs other services ------------------------------------------------

    def _by_request(self, request_id: str) -> RunRecord | None:
        with self._lock:
            found = [r for r in self.records.values() if r.run.spec.request_id == request_id]
        return found[0] if found else None

    def _resolve(self, request: pb.StartRunRequest, plan: RunPlan) -> pb.StartRunRequest:
        """The spec as run: datasets resolved to commits, the config completed; InvalidInput,
        NotFound or FailedPrecondition when the run cannot start."""
        spec = pb.StartRunRequest()
        spec.CopyFrom(request)
        spec.config_yaml = plan.config.to_yaml()
        for name, dataset, shards in (
            ("train_dataset", plan.train_dataset, plan.train_shards),
            ("val_dataset", plan.val_dataset, plan.val_shards),
        ):
            if dataset is not None and not shards:
                getattr(spec, name).ref = self.featurestore.resolve(*dataset)
        for name, refs in (("train_shards", plan.train_shards), ("val_shards", plan.val_shards)):
            for i, ref in enumerate(refs):
                _check_ref(f"{name}[{i}]", ref, self.objects)
        if plan.use_gpu and self._cluster_gpus() < 1:
            raise FailedPrecondition("use_gpu is set but the Ray cluster has no GPU")
        if plan.init_checkpoint_id:
            _check_checkpoint(self.objects, plan.init_checkpoint_id)
        if plan.train_dataset is None and not plan.train_shards:
            raise InvalidInput(
                "a run needs its data: train_dataset (a dataset ref; the featurestore builds its"
                " tensor shards) or train_shards"
            )
        with self._lock:
            pending = sum(r.run.state == pb.RUN_STATE_PENDING for r in self.records.values())
        if pending >= self.settings.max_queued_runs:
            raise TooLarge(f"{pending} runs are already waiting; try again later")
        return spec

    @staticmethod
    def _cluster_gpus() -> float:
        from trainer_svc._launcher import cluster_gpus

        return cluster_gpus()

    # -- execution -----------------------------------------------------------------------------

    def _execute(self, record: RunRecord) -> None:
        with record.lock:
            if record.terminal:
                return
            record.launched = True
        try:
            outcome = self._train(record)
        except Exception as exc:
            log.exception("run %s failed", record.run.run_id)
            outcome = ("failed", _reason(exc))
        self._finish(record, outcome)

    def _train(self, record: RunRecord) -> tuple[str, str]:
        from trainer_svc._control import RunControl
        from trainer_svc._launcher import build_trainer

        if not ray.is_initialized():
            raise RuntimeError("Ray is not running (start the service with trainer_svc.main)")
        loop_config = self._loop_config(record)
        control = RunControl.remote()
        with record.lock:
            record.control = control
            if record.cancel_requested:
                control.cancel.remote()
        done = threading.Event()
        monitor = threading.Thread(target=self._monitor, args=(record, done), daemon=True)
        monitor.start()
        try:
            trainer = build_trainer(
                record.run.run_id,
                record.plan,
                loop_config,
                self.settings.ray_storage_path,
                control,
                self.settings.worker_resources(),
            )
            trainer.fit()
            return ("ok", "")
        finally:
            done.set()
            monitor.join()
            self._drain(record)
            ray.kill(control)

    def _loop_config(self, record: RunRecord) -> dict[str, Any]:
        """The worker config dict; asks the featurestore for shards the request did not give."""
        plan, spec = record.plan, record.run.spec
        train_shards, val_shards = list(plan.train_shards), list(plan.val_shards)
        if not train_shards and plan.train_dataset is not None:
            train_shards = self.featurestore.shards(
                spec.train_dataset.dataset, spec.train_dataset.ref
            )
        if not val_shards and plan.val_dataset is not None:
            val_shards = self.featurestore.shards(spec.val_dataset.dataset, spec.val_dataset.ref)
        return {
            "run_id": record.run.run_id,
            "config_yaml": spec.config_yaml,
            "storage_uri": self.settings.storage_uri,
            "train_shards": train_shards,
            "val_shards": val_shards,
            "data_version": shards_version(train_shards) if train_shards else "",
            "init_checkpoint_id": plan.init_checkpoint_id,
        }

    def _monitor(self, record: RunRecord, done: threading.Event) -> None:
        last = 0.0
        while not done.wait(self.settings.poll_s):
            changed = self._drain(record)
            if changed or time.monotonic() - last > PERSIST_EVERY_S:
                self._persist(record)
                last = time.monotonic()

    def _drain(self, record: RunRecord) -> bool:
        """Fold the actor's pending events into the record; True if one was not metrics."""
        try:
            events = ray.get(record.control.drain.remote(), timeout=30)
        except Exception:
            log.warning("run %s: could not collect worker events", record.run.run_id)
            return False
        for event in events:
            record.apply(event)
        return any(e["kind"] != "metrics" for e in events)

    def _finish(self, record: RunRecord, outcome: tuple[str, str]) -> None:
        status, reason = outcome
        if record.cancel_requested:
            record.set_state(pb.RUN_STATE_CANCELLED, "workers stopped")
        elif status == "ok":
            record.set_state(pb.RUN_STATE_SUCCEEDED, f"finished at step {record.run.step}")
        else:
            reason = f"{reason} ({record.last_failure})" if record.last_failure else reason
            record.set_state(pb.RUN_STATE_FAILED, reason, ("training_failed", reason))
        self._persist(record)
        log.info("run %s ended %s", record.run.run_id, pb.RunState.Name(record.run.state))

    def _persist(self, record: RunRecord) -> None:
        """Save the record; one writer at a time, so the newest snapshot is the one stored."""
        with record.persist_lock:
            with record.lock:
                run, events = record.snapshot(), list(record.events)
            self.store.save(run, events)


def _check_ref(field: str, ref: dict[str, Any], objects: ObjectStore) -> None:
    """InvalidInput unless a request's shard ref names a blob that `objects` holds (of its
    size_bytes, when given); the message names the field, never the uri or a path."""
    if not names_blob(ref, objects):
        raise InvalidInput(
            f"{field}.uri does not name a blob of this service's object store: give the uri the"
            f" featurestore returned for {field}.sha256"
        )
    if not ref_exists(ref, objects):
        raise InvalidInput(f"{field}: the object store holds no blob of that sha256 and size")


def _check_checkpoint(objects: ObjectStore, checkpoint_id: str) -> None:
    """NotFound unless `checkpoint_id` is a stored checkpoint manifest; InvalidInput when the
    blob is something else."""
    try:
        read_manifest(objects, checkpoint_id)
    except ObjectNotFound:
        raise NotFound(f"no checkpoint {checkpoint_id}") from None
    except ValueError:
        raise InvalidInput(
            f"resume_from_checkpoint_id {checkpoint_id} is not a checkpoint manifest"
        ) from None


def _reason(exc: BaseException) -> str:
    """One line saying why, never a traceback nor a host path (`public_text`)."""
    return f"{type(exc).__name__}: {public_text(str(exc))}".rstrip(": ")
