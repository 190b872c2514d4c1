"""The Ray Serve deployment behind SamplerService (gRPC ingress; method names = rpc names).

Each request is validated (`_jobs.validate`), split into chunks and every chunk goes through
`_generate`, a `@serve.batch` method whose batch size is the number of atoms
(`batch_size_fn`): chunks of many requests are merged into one `Engine.generate` call (run in a
worker thread so the replica keeps accepting requests), then the results are split back.
Errors reach the client as gRPC statuses with a reason (set on the Serve gRPC context), never a
stack trace, the same for Sample and SampleStream (one validation, one `_set_status`):
ServiceError subclasses carry their code; a passed deadline is DEADLINE_EXCEEDED; anything else
is INTERNAL with an error id that the replica log has the traceback for.

Tokens: Serve's gRPC proxy runs no interceptors of ours and binds plaintext only, so the bearer
token check (svc_kit's, when the deployment is given a tokens file) runs here, first thing in
every RPC but the health Check: UNAUTHENTICATED "missing or invalid bearer token" otherwise.

Deadlines: the client sends its timeout as `autoperi-timeout-s` metadata (Serve's proxy does
not forward gRPC deadlines). A request stops waiting when it passes (DEADLINE_EXCEEDED; its
chunks not yet started are dropped from the batch queue), and a batch skips chunks whose deadline
passed while they were queued; a batch already running is not interrupted.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from collections.abc import AsyncIterator, Sequence

import grpc
from autoperi.sampler.v1 import sampler_pb2
from grpc_health.v1 import health_pb2
from ray import serve
from svc_kit import BearerTokens, DeadlineExceeded, ServiceError, Unauthenticated
from xtal import Crystal, CrystalError, ValidationLimits

from sampler_svc import _convert
from sampler_svc._engine import Chunk, Engine, load_engine
from sampler_svc._jobs import Job, Limits, validate

log = logging.getLogger("sampler_svc")

DEFAULT_MAX_BATCH_ATOMS = 2048


@dataclasses.dataclass(frozen=True)
class _Work:
    """A chunk to generate, and the distance its crystals must keep (0: none)."""

    chunk: Chunk
    min_distance: float = 0.0


def _atoms(items: Sequence[_Work]) -> int:
    return sum(w.chunk.num_atoms for w in items)


@dataclasses.dataclass(frozen=True)
class _Batch:
    """One chunk's crystals (None: rejected by the distance constraint) and when its batch
    started and finished (time.monotonic())."""

    crystals: list[Crystal | None]
    started: float
    finished: float


@dataclasses.dataclass(frozen=True)
class _Done:
    """A chunk's kept crystals (sample order) after up to max_attempts tries."""

    crystals: list[Crystal]
    num_failed: int
    generated: int  # samples generated, regenerations included
    started: float
    finished: float


@serve.deployment(name="SamplerDeployment")
class SamplerDeployment:
    """Samples crystals from one checkpoint; knobs in `user_config` (see `reconfigure`)."""

    def __init__(
        self,
        checkpoint: str,
        torch_threads: int = 1,
        max_atoms: int = 100,
        auth_tokens_file: str | None = None,
    ) -> None:
        """Load the checkpoint; with `auth_tokens_file`, every RPC but Check needs one of its
        bearer tokens (`authorization: Bearer <token>` metadata, svc_kit.BearerTokens)."""
        import torch

        torch.set_num_threads(torch_threads)
        self._engine: Engine = load_engine(checkpoint)
        self._limits = Limits(max_samples=1024, max_atoms=max_atoms)
        self._chunk_samples = 32
        self._max_batch_atoms = DEFAULT_MAX_BATCH_ATOMS
        self._tokens = BearerTokens.from_file(auth_tokens_file) if auth_tokens_file else None

    def reconfigure(self, config: dict) -> None:
        """Apply user_config: max_batch_atoms, batch_wait_timeout_s, max_samples_per_request,
        chunk_samples (each optional)."""
        if "max_batch_atoms" in config:
            self._max_batch_atoms = int(config["max_batch_atoms"])
            self._generate.set_max_batch_size(self._max_batch_atoms)
        if "batch_wait_timeout_s" in config:
            self._generate.set_batch_wait_timeout_s(float(config["batch_wait_timeout_s"]))
        if "max_samples_per_request" in config:
            max_samples = int(config["max_samples_per_request"])
            self._limits = dataclasses.replace(self._limits, max_samples=max_samples)
        if "chunk_samples" in config:
            self._chunk_samples = int(config["chunk_samples"])

    # ---- RPCs -------------------------------------------------------------------------------
    async def Sample(
        self, request: sampler_pb2.SampleRequest, grpc_context
    ) -> sampler_pb2.SampleResponse:
        """All samples of the request in one reply. A refused or failed request returns an
        empty reply with its status set on the context (sent with the reply)."""
        arrival = time.monotonic()
        tasks: list[asyncio.Future] = []
        try:
            job, tasks = self._start(request.spec, grpc_context, arrival)
            done = await _within(job, asyncio.gather(*tasks))
            crystals = [c for d in done for c in d.crystals]
            return _convert.sample_response(job, crystals, _tally(done), _seconds(arrival, done))
        except Exception as exc:
            _set_status(grpc_context, exc)
            return sampler_pb2.SampleResponse()
        finally:
            for task in tasks:  # the rest of a failed request is not generated
                task.cancel()

    async def SampleStream(
        self, request: sampler_pb2.SampleStreamRequest, grpc_context
    ) -> AsyncIterator[sampler_pb2.SampleStreamResponse]:
        """The samples in messages, one per completed chunk (completion order). A refused or
        failed request ends the stream with the status Sample would give, before any message
        or after the ones already sent.

        Contract: a failure sets its status on the context and then raises. Serve's proxy
        copies a stream's context only with each yielded message, so a status set without a
        message to carry it is lost and the stream ends OK; a raised error reaches the client
        with the status set on the context (Serve's gRPCStatusError). The error raised is a
        builtin carrying the details, so the proxy unpickles it without importing this module
        (and torch)."""
        arrival = time.monotonic()
        tasks: list[asyncio.Future] = []
        try:
            job, tasks = self._start(request.spec, grpc_context, arrival)
            done: list[_Done] = []
            for next_done in asyncio.as_completed(tasks, timeout=_remaining(job)):
                done.append(await next_done)
                seconds = _seconds(arrival, done)
                yield _convert.stream_response(job, done[-1].crystals, _tally(done), seconds)
        except Exception as exc:
            _set_status(grpc_context, exc)
            raise RuntimeError(grpc_context.details()) from None
        finally:
            for task in tasks:
                task.cancel()

    async def GetSamplerInfo(self, request, grpc_context) -> sampler_pb2.GetSamplerInfoResponse:
        """What this deployment serves."""
        try:
            self._authenticate(grpc_context)
        except Unauthenticated as exc:
            _set_status(grpc_context, exc)
            return sampler_pb2.GetSamplerInfoResponse()
        return _convert.info_response(self._engine.info, self._limits)

    async def Check(self, request) -> health_pb2.HealthCheckResponse:
        """grpc.health.v1 Check (routed here when this is the only app, or by metadata)."""
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)

    # ---- batching ---------------------------------------------------------------------------
    @serve.batch(
        max_batch_size=DEFAULT_MAX_BATCH_ATOMS, batch_wait_timeout_s=0.02, batch_size_fn=_atoms
    )
    async def _generate(self, items: list[_Work]) -> list[_Batch | Exception]:
        """One Engine.generate call for the chunks of many requests (expired ones skipped)."""
        started = time.monotonic()
        live = [w for w in items if w.chunk.deadline is None or w.chunk.deadline > started]
        results = await asyncio.to_thread(self._run, live) if live else []
        finished, it = time.monotonic(), iter(results)
        expired = DeadlineExceeded("the deadline passed while the request was queued")
        return [
            _Batch(next(it), started, finished)
            if w.chunk.deadline is None or w.chunk.deadline > started
            else expired
            for w in items
        ]

    def _run(self, items: list[_Work]) -> list[list[Crystal | None]]:
        """Generate (worker thread); crystals breaking their distance constraint become None."""
        results = self._engine.generate([w.chunk for w in items])
        return [
            [c if _far_enough(c, w.min_distance) else None for c in crystals]
            for w, crystals in zip(items, results, strict=True)
        ]

    async def _complete(self, chunk: Chunk, job: Job) -> _Done:
        """The chunk's crystals, regenerating rejected samples up to job.max_attempts tries."""
        kept: dict[int, Crystal] = {}
        generated, started = 0, None
        for _ in range(job.max_attempts):
            batch = await self._generate(_Work(chunk, job.min_distance))
            if isinstance(batch, Exception):
                raise batch
            started = batch.started if started is None else started
            generated += len(chunk.indices)
            rejected = [p for p, c in enumerate(batch.crystals) if c is None]
            pairs = zip(chunk.indices, batch.crystals, strict=True)
            kept.update((i, c) for i, c in pairs if c is not None)
            if not rejected:
                break
            chunk = chunk.retry(rejected)
        failed = len(rejected)
        return _Done([kept[i] for i in sorted(kept)], failed, generated, started, batch.finished)

    def _authenticate(self, grpc_context) -> None:
        """Unauthenticated unless the call carries an accepted token (when tokens are on)."""
        if self._tokens is not None:
            self._tokens.check(grpc_context.invocation_metadata())

    def _start(
        self, spec: sampler_pb2.SampleSpec, grpc_context, arrival: float
    ) -> tuple[Job, list[asyncio.Future]]:
        """The validated job of `spec` (what both RPCs run; Unauthenticated, or `validate`'s
        errors otherwise) and one started task per chunk (the caller cancels them)."""
        self._authenticate(grpc_context)
        timeout = _convert.timeout_from_metadata(grpc_context.invocation_metadata())
        job = validate(_convert.spec_in(spec, timeout), self._engine, self._limits, arrival)
        chunks = job.chunks(self._chunk_samples, self._max_batch_atoms)
        return job, [asyncio.ensure_future(self._complete(c, job)) for c in chunks]


async def _within(job: Job, work: asyncio.Future) -> list[_Done]:
    """The chunks' results within the job's deadline (DeadlineExceeded after it)."""
    try:
        return await asyncio.wait_for(work, _remaining(job))
    except TimeoutError:
        raise DeadlineExceeded("the deadline passed before all samples were generated") from None


def _far_enough(crystal: Crystal, min_distance: float) -> bool:
    """Whether the crystal is valid with atoms at least `min_distance` apart (0: no check)."""
    if min_distance <= 0:
        return True
    try:
        crystal.validate(ValidationLimits(min_distance=min_distance))
    except CrystalError:
        return False
    return True


def _tally(done: Sequence[_Done]) -> _convert.Tally:
    """Samples kept, failed and generated so far."""
    return _convert.Tally(
        kept=sum(len(d.crystals) for d in done),
        failed=sum(d.num_failed for d in done),
        generated=sum(d.generated for d in done),
    )


def _remaining(job: Job) -> float | None:
    return None if job.deadline is None else max(0.0, job.deadline - time.monotonic())


def _seconds(arrival: float, done: Sequence[_Done]) -> tuple[float, float, float]:
    """(queued, compute, total) of a request whose chunks are `done`."""
    if not done:
        return 0.0, 0.0, time.monotonic() - arrival
    first, last = min(d.started for d in done), max(d.finished for d in done)
    return first - arrival, last - first, time.monotonic() - arrival


def _set_status(grpc_context, exc: BaseException) -> None:
    """Put the status of `exc` on the gRPC context (cancellation is not caught: it is a
    BaseException and ends the call)."""
    if isinstance(exc, TimeoutError):  # as_completed's deadline
        exc = DeadlineExceeded("the deadline passed before all samples were generated")
    if isinstance(exc, ServiceError):
        code, details = exc.code, str(exc)
    else:
        error_id = uuid.uuid4().hex[:12]
        log.exception("sampling failed (error id %s)", error_id)
        code, details = grpc.StatusCode.INTERNAL, f"sampling failed (error id {error_id})"
    grpc_context.set_code(code)
    grpc_context.set_details(details)
