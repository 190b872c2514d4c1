"""Validation and chunking of sampler requests, without Ray."""

import dataclasses

import numpy as np
import pytest
from svc_kit import InvalidInput, NotFound

from sampler_svc import DeNovoSpec, EngineInfo, Limits, SampleSpecIn, validate

INFO = EngineInfo("ckpt", ("euler", "heun"), "heun", 50, max_z=100)
LIMITS = Limits(max_samples=100, max_atoms=100)


class _Engine:
    info = INFO

    def nfe(self, sampler: str, steps: int) -> int:
        return steps * (2 if sampler == "heun" else 1)

    def check(self, chunk) -> None:
        pass


def _spec(**fields) -> SampleSpecIn:
    base = {"task": "csp", "components": (("Sr", 1), ("Ti", 1), ("O", 3)), "num_samples": 70}
    return SampleSpecIn(**{**base, **fields})


def test_defaults_and_cell():
    job = validate(_spec(num_formula_units=2, seed=5), _Engine(), LIMITS, arrival=10.0)
    assert (job.sampler, job.steps, job.nfe, job.seed, job.deadline) == ("heun", 50, 100, 5, None)
    assert sorted(job.cell.tolist()) == [8] * 6 + [22, 22, 38, 38]
    timed = validate(_spec(timeout_s=2.5), _Engine(), LIMITS, arrival=10.0)
    assert timed.deadline == 12.5 and 0 <= timed.seed < 2**63


def test_chunks_respect_samples_and_atoms():
    job = validate(_spec(seed=1), _Engine(), LIMITS, arrival=0.0)
    chunks = job.chunks(chunk_samples=32, max_batch_atoms=100)  # 20 cells of 5 atoms
    assert [len(c.indices) for c in chunks] == [20, 20, 20, 10]
    assert all(c.num_atoms <= 100 and c.seed == 1 for c in chunks)
    assert all(np.array_equal(cell, job.cell) for c in chunks for cell in c.cells)
    assert [c.indices for c in chunks[-1:]] == [tuple(range(60, 70))]
    assert job.max_attempts == 1
    assert validate(_spec(min_interatomic_distance=1.0), _Engine(), LIMITS, 0.0).max_attempts == 3


@pytest.mark.parametrize(
    ("fields", "error", "reason"),
    [
        ({"checkpoint_id": "other"}, NotFound, "'other' is not served"),
        ({"sampler": "ddim"}, InvalidInput, "'ddim' is not supported"),
        ({"num_steps": 5000}, InvalidInput, "num_steps must be at most"),
        ({"num_samples": 101}, InvalidInput, "1..100, got 101"),
        ({"components": (("Sr", 0),)}, InvalidInput, "counts must be positive"),
        ({"components": (("Sr", 1), ("Qq", 1))}, InvalidInput, "unknown elements: 'Qq'"),
        ({"space_group_number": 221}, InvalidInput, "not conditioned on the space group"),
        ({"target_properties": ("band_gap",)}, InvalidInput, "not conditioned on band_gap"),
        ({"min_interatomic_distance": -1.0}, InvalidInput, "must be in 0..5"),
        ({"min_interatomic_distance": 1.0, "max_attempts": 11}, InvalidInput, "at most 10"),
        ({"task": "de_novo"}, InvalidInput, "does not support de novo"),
    ],
)
def test_rejections_name_the_reason(fields, error, reason):
    with pytest.raises(error, match=reason):
        validate(_spec(**fields), _Engine(), LIMITS, arrival=0.0)


def _de_novo(elements=(), required=(), hi=0) -> SampleSpecIn:
    return SampleSpecIn(
        task="de_novo", de_novo=DeNovoSpec(0, hi, elements, required), num_samples=1
    )


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        (_de_novo(("Cu", "S"), ("Li",)), "required_elements Li are not among the elements"),
        (_de_novo(required=("Qq",)), "required_elements has unknown symbols: 'Qq'"),
        (_de_novo(required=("Li", "Na"), hi=1), "required_elements has 2 elements; max_atoms 1"),
    ],
    ids=["not-a-subset", "unknown", "too-many"],
)
def test_required_elements_are_checked(spec, reason):
    info = dataclasses.replace(INFO, supports_de_novo=True, atom_counts=(0, 5, 5, 5))
    engine = _Engine()
    engine.info = info
    with pytest.raises(InvalidInput, match=reason):
        validate(spec, engine, LIMITS, arrival=0.0)


def test_required_elements_raise_the_fewest_atoms():
    engine = _Engine()
    engine.info = dataclasses.replace(INFO, supports_de_novo=True, atom_counts=(0, 5, 5, 5))
    job = validate(_de_novo(required=("Li", "O")), engine, LIMITS, arrival=0.0)
    assert (job.de_novo.min_atoms, job.de_novo.max_atoms) == (2, 3)
    assert job.de_novo.required == ("Li", "O")
