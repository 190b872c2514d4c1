"""ScorerCore: the scorer's logic in plain Python (no gRPC), over a CHGNet worker pool.

`score(crystals, options, deadline)` checks the request (TooLarge over `max_batch_size` crystals,
InvalidInput for bad options), resolves the novelty reference once, then returns an iterator of
result lists, one per worker batch, in completion order. A crystal that CHGNet must not see gets a
per-crystal error (`ScorerCore.refusal`: NaN or infinite numbers, a cell or coordinate beyond the
`CoreLimits` bounds, over `max_atoms` atoms, under `MIN_VOLUME_PER_ATOM` A^3 per atom) before any
neighbour list is built; the rest of the request is scored. With a `HullReference`, energy above the
hull and formation energy are added here, like novelty. Deadlines are `time.monotonic()` values: a
batch that cannot finish before the deadline raises DeadlineExceeded; without a deadline a batch
over `call_timeout_s` fails its crystals with the code "timeout".
"""

import dataclasses
import itertools
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from autoperi_data import CrystalArrays
from autoperi_potential import MIN_VOLUME_PER_ATOM, chgnet_version
from svc_kit import DeadlineExceeded, InvalidInput, TooLarge, Unavailable
from xtal import Crystal, CrystalError, ValidationLimits

from scorer_svc._hull import HullReference
from scorer_svc._model import DEFAULT_RELAX_STEPS, ScoreOptions, ScorerInfo, Scores
from scorer_svc._novelty import NoveltyIndex, NoveltyReferences
from scorer_svc._pool import PotentialPool, WorkerError, WorkerTimeout, WorkerUnavailable


@dataclass(frozen=True)
class CoreLimits:
    """Request limits and batching: crystals per request and atoms per crystal; the largest
    cell a crystal may have (lattice vector length in A, volume per atom in A^3: so at most
    max_atoms * max_volume_per_atom A^3 in all), refused before any neighbour list is built;
    crystals per worker call for single points and for relaxations; the most relaxation steps a
    request may ask for; the time limit of one worker call when the client set no deadline."""

    max_batch_size: int = 256
    max_atoms: int = 200
    max_cell_length: float = 1000.0
    max_volume_per_atom: float = 1000.0
    batch_size: int = 16
    relax_batch_size: int = 4
    max_relax_steps: int = 2000
    call_timeout_s: float = 900.0


@dataclass
class RunStats:
    """Where the time of one `score` call went (filled as batches complete), seconds."""

    queued_s: float = 0.0
    compute_s: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, queued_s: float, compute_s: float) -> None:
        with self._lock:
            self.queued_s += queued_s
            self.compute_s += compute_s


class ScorerCore:
    """Scores batches of crystals: CHGNet energies/forces/stress, relaxation, validity,
    symmetry (in the worker pool) and novelty (here, against cached dataset commits)."""

    def __init__(
        self,
        pool: PotentialPool,
        references: NoveltyReferences | None = None,
        limits: CoreLimits | None = None,
        hull: HullReference | None = None,
    ) -> None:
        self.pool = pool
        self.references = references
        self.limits = limits or CoreLimits()
        self.hull = hull
        self._executor = ThreadPoolExecutor(pool.limits.workers, "scorer-batch")
        self._bounds = ValidationLimits(
            max_atoms=self.limits.max_atoms,
            min_distance=0.0,  # no neighbour search here: distances are scored
            min_volume=0.0,
            max_length=self.limits.max_cell_length,
            max_volume_per_atom=self.limits.max_volume_per_atom,
        )

    def close(self) -> None:
        """Stop the worker processes and the novelty reader."""
        self._executor.shutdown(wait=False, cancel_futures=True)
        self.pool.close()
        if self.references is not None:
            self.references.close()

    def info(self) -> ScorerInfo:
        """The potential, the hull reference (if any) and the limits."""
        return ScorerInfo(
            potential_name="CHGNet",
            potential_version=chgnet_version(),
            hull_configured=self.hull is not None,
            hull_source=self.hull.source if self.hull is not None else "",
            max_batch_size=self.limits.max_batch_size,
            max_atoms=self.limits.max_atoms,
        )

    def check(self, crystals: Sequence[Crystal], options: ScoreOptions) -> None:
        """InvalidInput / TooLarge for a request the core will not run."""
        if not crystals:
            raise InvalidInput("the request has no crystals: send at least one")
        if len(crystals) > self.limits.max_batch_size:
            raise TooLarge(
                f"{len(crystals)} crystals exceed the limit of {self.limits.max_batch_size}"
                " per request: split the request"
            )
        if options.relax and options.max_relax_steps > self.limits.max_relax_steps:
            raise InvalidInput(
                f"max_relax_steps {options.max_relax_steps} exceeds the server's limit of"
                f" {self.limits.max_relax_steps}"
            )
        if options.novelty_reference is not None and self.references is None:
            raise InvalidInput("this scorer has no dataset store: novelty cannot be checked")

    def score(
        self,
        crystals: Sequence[Crystal],
        options: ScoreOptions,
        deadline: float | None = None,
        stats: RunStats | None = None,
    ) -> tuple[str, Iterator[list[Scores]]]:
        """(novelty reference commit or '', iterator of result lists as batches complete).
        Raises before iterating for a bad request or reference (InvalidInput, TooLarge,
        NotFound); the iterator raises DeadlineExceeded and Unavailable."""
        self.check(crystals, options)
        steps = options.max_relax_steps or min(DEFAULT_RELAX_STEPS, self.limits.max_relax_steps)
        options = dataclasses.replace(options, max_relax_steps=steps)
        index = None
        if options.novelty_reference is not None:
            index = self.references.index(options.novelty_reference)
        stats = stats or RunStats()
        early, todo = self._prefilter(crystals)
        size = self.limits.relax_batch_size if options.relax else self.limits.batch_size
        batches = _balanced(todo, size, self.pool.limits.workers)
        run = self._run(crystals, batches, options, deadline, index, stats)
        return (index.commit if index else ""), _then(early, run)

    def _prefilter(self, crystals: Sequence[Crystal]) -> tuple[list[Scores], list[int]]:
        """(errors of crystals CHGNet must not see, indices of the others)."""
        early, todo = [], []
        for i, crystal in enumerate(crystals):
            problem = self.refusal(crystal)
            if problem is None:
                todo.append(i)
            else:
                early.append(Scores.failed(i, crystal.id, *problem))
        return early, todo

    def refusal(self, crystal: Crystal) -> tuple[str, str] | None:
        """(code, message) of why `crystal` is not scored, or None. Only array checks, no
        neighbour search: NaN or infinite numbers ("non_finite"), a lattice vector over
        `max_cell_length`, a volume per atom over `max_volume_per_atom` or a fractional
        coordinate beyond +-1000 ("out_of_range"), an unknown element, no atoms or over
        `max_atoms`, a zero volume or under `MIN_VOLUME_PER_ATOM` A^3 per atom ("small_volume")."""
        try:
            crystal.validate(self._bounds)
        except CrystalError as exc:
            return exc.code, exc.message
        per_atom = crystal.volume / crystal.num_atoms
        if per_atom < MIN_VOLUME_PER_ATOM:
            message = f"{per_atom:.4g} A^3 per atom is below {MIN_VOLUME_PER_ATOM} A^3"
            return "small_volume", message + ": not a physical cell"
        return None

    def _run(
        self,
        crystals: Sequence[Crystal],
        batches: list[list[int]],
        options: ScoreOptions,
        deadline: float | None,
        index: NoveltyIndex | None,
        stats: RunStats,
    ) -> Iterator[list[Scores]]:
        def job(batch: list[int]) -> list[Scores]:
            return self._batch(crystals, batch, options, deadline, index, stats)

        futures = [self._executor.submit(job, b) for b in batches]
        try:
            for future in _completed(futures):
                if future.cancelled():  # by close(): queued batches are dropped
                    raise Unavailable("the scorer is shutting down: retry later")
                yield future.result()
        finally:
            for future in futures:
                future.cancel()

    def _batch(
        self,
        crystals: Sequence[Crystal],
        batch: list[int],
        options: ScoreOptions,
        deadline: float | None,
        index: NoveltyIndex | None,
        stats: RunStats,
    ) -> list[Scores]:
        items = [CrystalArrays.of(crystals[i]) for i in batch]
        own = deadline is None
        limit = time.monotonic() + self.limits.call_timeout_s if own else deadline
        start = time.perf_counter()
        try:
            results, queued = self.pool.score(items, options, self.limits.batch_size, limit)
        except WorkerTimeout as exc:
            if not own:
                raise DeadlineExceeded(
                    f"scoring did not finish before the deadline: {exc}"
                ) from None
            return [Scores.failed(i, crystals[i].id, "timeout", str(exc)) for i in batch]
        except WorkerUnavailable as exc:
            raise Unavailable(f"the scorer cannot run CHGNet now: {exc}") from None
        except WorkerError as exc:  # the worker caught it: the whole batch failed, say why
            return [Scores.failed(i, crystals[i].id, "scorer_error", str(exc)) for i in batch]
        stats.add(queued, time.perf_counter() - start - queued)
        for i, result in zip(batch, results, strict=True):
            result.index, result.crystal_id = i, crystals[i].id
            if result.error is not None:
                continue
            if index is not None:
                _novelty(index, crystals[i], result, options.relax)
            if self.hull is not None:
                result.e_above_hull, result.formation_energy_per_atom = self.hull.evaluate(
                    crystals[i].atomic_numbers, result.energy_per_atom
                )
        return results


def _balanced(todo: list[int], size: int, workers: int) -> list[list[int]]:
    """`todo` in consecutive batches of at most `size`, as many as ceil(len / size) rounded up
    to a multiple of `workers`, of near-equal sizes, so that the workers finish together (100
    crystals, size 16, 2 workers: 8 batches of 12-13 rather than 6 of 16 and one of 4)."""
    if not todo:
        return []
    count = -(-len(todo) // size)
    count = min(len(todo), -(-count // workers) * workers)
    base, extra = divmod(len(todo), count)
    bounds = [0, *np.cumsum([base + (k < extra) for k in range(count)]).tolist()]
    return [todo[a:b] for a, b in itertools.pairwise(bounds)]


def _novelty(index: NoveltyIndex, crystal: Crystal, result: Scores, relaxed: bool) -> None:
    """Novelty of the scored structure (the relaxed one when relaxed)."""
    scored = crystal.replace(lattice=result.lattice, frac_coords=result.frac_coords)
    match = index.match(scored, "" if relaxed else result.content_hash)
    result.novel = match is None
    result.matched_content_hash = match or ""


def _completed(futures: Sequence[Future]) -> Iterator[Future]:
    """`futures` as they finish, cancelled ones included. `concurrent.futures.wait` and
    `as_completed` are not woken by `Future.cancel()`, which `close()` calls on queued batches
    (`executor.shutdown(cancel_futures=True)`): a request in flight at `close()` waited there
    forever, and its thread kept the process from exiting."""
    finished: queue.SimpleQueue[Future] = queue.SimpleQueue()
    for future in futures:
        future.add_done_callback(finished.put)
    for _ in futures:
        yield finished.get()


def _then(first: list[Scores], rest: Iterator[list[Scores]]) -> Iterator[list[Scores]]:
    """`first` (if any results), then the lists of `rest`; closing it closes `rest`."""
    if first:
        yield first
    yield from rest
