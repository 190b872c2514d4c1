"""The soak's requests and how each reply is judged.

`plan_requests(plan, limits)` is the seeded list of requests: unary (Sample) or streaming
(SampleStream) in equal shares, `bad_fraction` of them bad, one of `bad_cases(limits)` in turn
(each bad request must be refused with its status and a reason), the rest CSP requests of 1 to
`plan.max_samples` samples of a perovskite with a seed unique to the request. The sampler names
each crystal `<checkpoint>-<seed>-<sample index>`, so every crystal is matched to its request:
a good request must get each index 0..n-1 exactly once (a missing one is lost; a repeated one,
one out of range or one with another request's seed is duplicated).
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from dataclasses import dataclass

from autoperi.sampler.v1 import sampler_pb2
from sampler_svc import client

FAMILY = ("SrTiO3", "BaTiO3", "CaTiO3", "KNbO3", "LaAlO3", "SrZrO3")
UNARY, STREAM = "unary", "stream"


@dataclass(frozen=True)
class SoakPlan:
    """What the soak sends: how many requests, from how many clients, how many bad."""

    requests: int = 10_000
    clients: int = 64
    bad_fraction: float = 0.1
    seed: int = 0
    max_samples: int = 8  # a good request asks for 1..max_samples crystals
    steps: int = 2  # 0: the checkpoint's default
    sampler: str = "euler"  # "": the checkpoint's default
    timeout_s: float = 600.0


@dataclass(frozen=True)
class Limits:
    """What the sampler under test accepts (from GetSamplerInfo)."""

    max_samples: int
    max_atoms: int


@dataclass(frozen=True)
class BadCase:
    """A request the sampler must refuse: its status name and a text its details contain."""

    name: str
    spec: sampler_pb2.SampleSpec
    status: str
    reason: str


@dataclass(frozen=True)
class SoakRequest:
    """One request: its number, unary or stream, its spec, and its bad case (None: good)."""

    number: int
    kind: str
    spec: sampler_pb2.SampleSpec
    bad: BadCase | None = None


@dataclass
class Reply:
    """What came back: the status and details, the crystal ids, the stream's messages
    (num_done, num_total) and the reported seed, and the latencies (seconds)."""

    request: SoakRequest
    status: str = "OK"
    details: str = ""
    ids: tuple[str, ...] = ()
    progress: tuple[tuple[int, int], ...] = ()
    seed: int | None = None
    seconds: float = 0.0
    first_seconds: float | None = None  # stream: the first message


def bad_cases(limits: Limits) -> list[BadCase]:
    """The bad requests, one thing wrong in each (unknown element, too many samples, ...)."""
    csp, spec = client.csp_spec, sampler_pb2.SampleSpec
    many = limits.max_samples + 1
    invalid = [
        ("unknown_element", csp({"Xx": 1, "O": 3}, 2), "unknown elements: 'Xx'"),
        ("garbage_element", csp({"\u202eO": 1}, 1), "unknown elements"),
        ("empty_composition", csp({}, 2), "empty composition"),
        ("zero_count", csp({"Sr": 0, "O": 1}, 1), "composition counts must be positive"),
        ("zero_samples", csp("SrTiO3", 0), "num_samples must be in 1.."),
        ("too_many_samples", csp("SrTiO3", many), f"num_samples must be in 1..{many - 1}"),
        ("cell_too_big", csp({"Sr": 60, "O": 60}, 1), f"more than {limits.max_atoms} atoms"),
        ("z_too_big", csp("SrTiO3", 1, num_formula_units=21), "more than"),
        ("too_many_steps", csp("SrTiO3", 1, steps=100_000), "num_steps must be at most"),
        ("no_task", spec(num_samples=1), "spec needs a task"),
        ("de_novo_on_csp", spec(de_novo=sampler_pb2.DeNovoTask(), num_samples=1), "de novo"),
        ("unsupported_sampler", _with(csp("SrTiO3", 1), sampler=3), "sampler 'ddpm'"),
        ("min_distance", _constrained(min_interatomic_distance=10), "min_interatomic_distance"),
        ("space_group", _constrained(space_group_number=225), "not conditioned on the space"),
        ("checkpoint_path", csp("SrTiO3", 1, checkpoint_id="/etc/passwd"), "not a checkpoint id"),
    ]
    cases = [BadCase(name, s, "INVALID_ARGUMENT", reason) for name, s, reason in invalid]
    unknown = csp("SrTiO3", 1, checkpoint_id="no-such-checkpoint")
    return [*cases, BadCase("unknown_checkpoint", unknown, "NOT_FOUND", "is not served here")]


def _with(spec: sampler_pb2.SampleSpec, **fields) -> sampler_pb2.SampleSpec:
    for name, value in fields.items():
        setattr(spec, name, value)
    return spec


def _constrained(**constraints) -> sampler_pb2.SampleSpec:
    spec = client.csp_spec("SrTiO3", 1)
    spec.constraints.CopyFrom(sampler_pb2.Constraints(**constraints))
    return spec


def plan_requests(plan: SoakPlan, limits: Limits) -> list[SoakRequest]:
    """The soak's requests in sending order (deterministic in plan.seed)."""
    rng = random.Random(plan.seed)
    cases = bad_cases(limits)
    bad = set(rng.sample(range(plan.requests), round(plan.requests * plan.bad_fraction)))
    out, k = [], 0
    for number in range(plan.requests):
        kind = UNARY if rng.random() < 0.5 else STREAM
        if number in bad:
            case, k = cases[k % len(cases)], k + 1
            out.append(SoakRequest(number, kind, case.spec, case))
        else:
            out.append(SoakRequest(number, kind, _good_spec(plan, rng, number)))
    return out


def _good_spec(plan: SoakPlan, rng: random.Random, number: int) -> sampler_pb2.SampleSpec:
    n = rng.randint(1, plan.max_samples)
    seed = plan.seed * 10_000_000 + number  # unique per request: the crystal ids carry it
    return client.csp_spec(rng.choice(FAMILY), n, plan.steps, seed, plan.sampler)


class Verdicts:
    """The counts the soak reports, filled reply by reply (`add`)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.refused_good: Counter[str] = Counter()
        self.bad: dict[str, Counter[str]] = {}
        self.reasons: dict[str, dict[str, str]] = {}  # bad case -> expected and first details
        self.examples: list[dict] = []

    def add(self, reply: Reply) -> None:
        """Judge one reply (see the module doc)."""
        req = reply.request
        self.counts[f"{req.kind}_{'bad' if req.bad else 'good'}"] += 1
        if req.bad is not None:
            self._bad(reply, req.bad)
        elif reply.status != "OK":
            self.refused_good[reply.status] += 1
            self._example("wrongly_refused", reply)
        else:
            self._good(reply)

    def _bad(self, reply: Reply, case: BadCase) -> None:
        tally = self.bad.setdefault(case.name, Counter())
        expected, got = f"{case.status}: {case.reason}", f"{reply.status}: {reply.details}"
        self.reasons.setdefault(case.name, {"expected": expected, "got": got})
        right = reply.status == case.status and case.reason in reply.details
        right = right and "Traceback" not in reply.details
        tally["refused_with_reason" if right else reply.status] += 1
        if reply.status == "OK":
            self.counts["wrongly_accepted"] += 1
            self._example("wrongly_accepted", reply)
        elif not right:
            self.counts["wrong_refusal"] += 1
            self._example("wrong_refusal", reply)

    def _good(self, reply: Reply) -> None:
        n, seed = reply.request.spec.num_samples, reply.request.spec.seed
        seen = Counter(_index_of(i, seed) for i in reply.ids)
        lost = sum(1 for k in range(n) if k not in seen)
        extra = sum(c - 1 for c in seen.values()) + sum(c for k, c in seen.items() if k >= n)
        self.counts["samples_expected"] += n
        self.counts["samples_received"] += len(reply.ids)
        self.counts["samples_lost"] += lost
        self.counts["samples_duplicated"] += extra
        self.counts["requests_lost"] += lost > 0
        self.counts["requests_duplicated"] += extra > 0
        if not _progress_ok(reply, n) or reply.seed != seed:
            self.counts["bad_progress_or_seed"] += 1
            self._example("bad_progress_or_seed", reply)
        if lost or extra:
            self._example("lost_or_duplicated", reply)

    def _example(self, kind: str, reply: Reply) -> None:
        if len(self.examples) < 20:
            req = reply.request
            self.examples.append(
                {"kind": kind, "request": req.number, "rpc": req.kind, "status": reply.status,
                 "details": reply.details[:300], "bad_case": req.bad.name if req.bad else None,
                 "ids": len(reply.ids)}
            )  # fmt: skip


def _index_of(crystal_id: str, seed: int) -> int:
    """The sample index of `<checkpoint>-<seed>-<index>`; a huge index (counted as extra)
    for an id of another request or of another form."""
    try:
        _, got_seed, index = crystal_id.rsplit("-", 2)
        return int(index) if int(got_seed) == seed else 1 << 62
    except ValueError:  # not an id of this form
        return 1 << 62


def _progress_ok(reply: Reply, n: int) -> bool:
    """A stream's num_done rises to num_total = n; a unary reply has no progress."""
    if reply.request.kind == UNARY:
        return not reply.progress
    done = [d for d, _ in reply.progress]
    rising = all(a < b for a, b in itertools.pairwise(done))
    return rising and done[-1:] == [n] and {t for _, t in reply.progress} == {n}
