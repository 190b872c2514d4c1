"""Conditioned de novo generation, measured: for each condition, the share of samples that
honour it, beside the share of unconditional samples that happen to.

A `Condition` asks for allowed elements (a chemical system), required elements, a space group
and an atom-count range; a sample honours its chemical system when all its elements are allowed
and all required ones are present, its space group when spglib's (pymatgen's
SpacegroupAnalyzer, symprec 0.1) equals the request, its atom range when its atom count lies in
it. Per-sample checks (structural validity, CDVAE's: atoms >= 0.5 A apart, volume >= 0.1 A^3;
and those the caller adds, `ConditioningPlan.checks`) and the number of distinct reduced
compositions are reported beside, on the condition's samples and on the unconditional samples
that happen to honour it, to show what conditioning costs. `write_conditioning`
(`_bench_conditioning_report`) writes the report. A condition
the checkpoint refuses (`Generator.check`) is recorded with its reason; a sample it gives up on
counts as a failure, not as a sample.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pymatgen.core import Element
from xtal import Crystal, CrystalError

from autoperi_model._bench import _machine
from autoperi_model._generator import Generator
from autoperi_model._ion_exchange import SYMPREC, reduced_key, spglib_group
from autoperi_model._sampling import SampleSpec, sample_seed
from autoperi_model._template_generator import SPACE_GROUP

CHUNK = 50  # samples per `Generator.sample` call


@dataclasses.dataclass(frozen=True)
class Condition:
    """One de novo request: allowed and required element symbols, space group (0: any) and
    atom range [lo, hi] (hi 0: any)."""

    name: str
    elements: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    space_group: int = 0
    atoms: tuple[int, int] = (1, 0)

    def spec(self, seed: int) -> SampleSpec:
        """The SampleSpec of one sample with `seed`."""
        conditions = {SPACE_GROUP: float(self.space_group)} if self.space_group else {}
        return SampleSpec(
            seed, None, _numbers(self.elements), self.atoms[0], self.atoms[1],
            conditions=conditions, required_elements=_numbers(self.required),
        )  # fmt: skip

    def parts(self) -> tuple[str, ...]:
        """The parts of the condition this request sets."""
        parts = ("chemical_system",) if self.elements or self.required else ()
        parts += ("space_group",) if self.space_group else ()
        return parts + (("atoms",) if self.atoms != (1, 0) else ())

    def honoured(self, crystal: Crystal, group: int) -> dict[str, bool]:
        """Per part of the condition, whether `crystal` (of spglib group `group`) honours it."""
        have = set(crystal.atomic_numbers.tolist())
        allowed = set(_numbers(self.elements)) or have
        checks = {
            "chemical_system": have <= allowed and set(_numbers(self.required)) <= have,
            "space_group": group == self.space_group,
            "atoms": self.atoms[0] <= len(crystal.atomic_numbers) <= _hi(self.atoms),
        }
        return {part: checks[part] for part in self.parts()}


ION_EXCHANGE_CONDITIONS = (
    Condition("Li-Fe-P-O", ("Li", "Fe", "P", "O")),
    Condition("Ba-Ti-O", ("Ba", "Ti", "O")),
    Condition("Cu-S", ("Cu", "S")),
    Condition("Mg-Al-O", ("Mg", "Al", "O")),
    Condition("Li-Fe-P-O, all required", ("Li", "Fe", "P", "O"), ("Li", "Fe", "P", "O")),
    Condition("requires Li", required=("Li",)),
    *(Condition(f"space group {g}", space_group=g) for g in (225, 62, 194, 14)),
    Condition("8-12 atoms", atoms=(8, 12)),
    Condition("Li, space group 62, 8-12 atoms", required=("Li",), space_group=62, atoms=(8, 12)),
)
ELEMENT_CONDITIONS = (
    Condition("Li-Fe-P-O", ("Li", "Fe", "P", "O")),
    Condition("Mg-Al-O", ("Mg", "Al", "O")),
    Condition("requires Li", required=("Li",)),
    Condition("Li-Fe-P-O, all required", ("Li", "Fe", "P", "O"), ("Li", "Fe", "P", "O")),
)


@dataclasses.dataclass(frozen=True)
class ConditioningPlan:
    """`n` samples per condition, seed, steps (None: the checkpoint's), and named per-sample
    checks whose shares are reported beside the conditions (e.g. the application's SMACT
    compositional validity); structural validity is always one."""

    n: int = 500
    seed: int = 0
    steps: int | None = None
    checks: Mapping[str, Callable[[Crystal], bool]] = dataclasses.field(default_factory=dict)


def bench_conditioning(
    checkpoint: Path, conditions: Sequence[Condition], plan: ConditioningPlan | None = None
) -> dict[str, Any]:
    """`plan.n` samples unconditionally and per condition from the de novo checkpoint; per
    condition the shares that honour each part, and those of the unconditional samples; the
    checks' shares on the condition's samples and on the unconditional samples that honour it
    (one torch thread, so CPU time is the cost of one core; the thread count is restored)."""
    plan = plan or ConditioningPlan()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        gen = Generator.from_checkpoint(checkpoint, tasks=("dng",))
        rows = _rows(gen, conditions, plan)
    finally:
        torch.set_num_threads(threads)
    return {
        "benchmark": "conditioning",
        "checkpoint": f"checkpoints/{Path(checkpoint).name}",
        "checkpoint_id": gen.checkpoint_id,
        "kind": gen.kind,
        "samples_per_condition": plan.n,
        "seed": plan.seed,
        "steps": plan.steps or gen.default_steps,
        "symprec": SYMPREC,
        "checks": list(_checks(plan)),
        "conditions": rows,
        "cpu_seconds": round(sum(r["cpu_seconds"] for r in rows), 1),
        "machine": {**_machine(), "threads": 1},
    }


def _rows(gen: Generator, conditions: Sequence[Condition], plan: ConditioningPlan) -> list[dict]:
    """The unconditional row, then one per condition with the unconditional shares beside."""
    free = _run(gen, Condition("unconditional"), plan)
    rows = [free["row"]]
    for condition in conditions:
        row = _run(gen, condition, plan)["row"]
        row["unconditional_shares"] = _shares(condition, free["samples"])
        honouring = [c for c, g in free["samples"] if all(condition.honoured(c, g).values())]
        row["unconditional_honouring"] = len(honouring)
        row["unconditional_checks"] = _check_shares(plan, honouring)
        rows.append(row)
    return rows


def _run(gen: Generator, condition: Condition, plan: ConditioningPlan) -> dict:
    """Sample `plan.n` crystals of `condition` (chunks of `CHUNK`; a chunk that fails is
    retried one sample at a time, so each failure is counted) and measure them."""
    started, wall = time.process_time(), time.perf_counter()
    specs = [condition.spec(sample_seed(plan.seed, i)) for i in range(plan.n)]
    row: dict[str, Any] = {"condition": condition.name, **_request(condition)}
    try:
        gen.check(specs[:1])
    except ValueError as exc:
        return {"samples": [], "row": {**row, "refused": str(exc), "cpu_seconds": 0.0}}
    crystals, failed = [], 0
    for start in range(0, plan.n, CHUNK):
        got, lost = _sample(gen, specs[start : start + CHUNK], plan.steps)
        crystals, failed = crystals + got, failed + lost
    samples = [(c, spglib_group(c)) for c in crystals]
    row.update(generated=len(crystals), failed=failed, shares=_shares(condition, samples))
    row["checks"] = _check_shares(plan, crystals)
    row["distinct_compositions"] = len({reduced_key(c.atomic_numbers) for c in crystals})
    row["cpu_seconds"] = round(time.process_time() - started, 1)
    row["wall_seconds"] = round(time.perf_counter() - wall, 1)
    return {"samples": samples, "row": row}


def _checks(plan: ConditioningPlan) -> dict[str, Callable[[Crystal], bool]]:
    return {"struct_valid": _valid, **plan.checks}


def _check_shares(plan: ConditioningPlan, crystals: Sequence[Crystal]) -> dict[str, float]:
    return {name: _share([check(c) for c in crystals]) for name, check in _checks(plan).items()}


def _sample(gen: Generator, specs: list[SampleSpec], steps: int | None) -> tuple[list, int]:
    try:
        return gen.sample(specs, steps), 0
    except ValueError:
        if len(specs) == 1:
            return [], 1
    parts = [_sample(gen, [s], steps) for s in specs]
    return [c for got, _ in parts for c in got], sum(lost for _, lost in parts)


def _shares(condition: Condition, samples: Sequence[tuple[Crystal, int]]) -> dict[str, float]:
    """Per part and for the whole condition ("all"), the share of `samples` honouring it."""
    checks = [condition.honoured(c, g) for c, g in samples]
    shares = {p: _share([c[p] for c in checks]) for p in condition.parts()}
    return {**shares, "all": _share([all(c.values()) for c in checks])} if shares else {}


def _request(condition: Condition) -> dict[str, Any]:
    return {
        "elements": "-".join(condition.elements),
        "required": "-".join(condition.required),
        "space_group": condition.space_group,
        "atoms": f"{condition.atoms[0]}-{condition.atoms[1]}" if condition.atoms[1] else "",
    }


def _valid(crystal: Crystal) -> bool:
    try:
        crystal.validate()
    except CrystalError:
        return False
    return True


def _share(flags: Sequence[bool]) -> float | None:
    """The share of true flags in %, None when there are none."""
    return round(100.0 * float(np.mean(flags)), 2) if len(flags) else None


def _numbers(symbols: Sequence[str]) -> tuple[int, ...]:
    return tuple(sorted(Element(s).Z for s in symbols))


def _hi(atoms: tuple[int, int]) -> int:
    return atoms[1] or 10**9
