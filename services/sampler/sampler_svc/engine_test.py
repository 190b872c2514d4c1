"""The flow engine: same noise as the Generator, results independent of batching."""

from pathlib import Path

import numpy as np
import pytest
from autoperi_model import Generator, parse_composition

from sampler_svc._engine import Chunk, FlowEngine, sample_seed

CHECKPOINT = Path(__file__).resolve().parents[3] / "checkpoints" / "perov_5_csp"


@pytest.fixture(scope="module")
def engine() -> FlowEngine:
    return FlowEngine(Generator.from_checkpoint(CHECKPOINT))


def _chunk(
    formula: str, n: int, seed: int, first: int = 0, sampler: str = "euler", steps: int = 2
) -> Chunk:
    cell = parse_composition(formula)
    indices = tuple(range(first, first + n))
    return Chunk(seed=seed, indices=indices, steps=steps, sampler=sampler, cells=(cell,) * n)


def test_one_sample_equals_the_generator(engine):
    (crystal,) = engine.generate([_chunk("SrTiO3", 1, seed=7, steps=4)])[0]
    cell = parse_composition("SrTiO3")
    (ref,) = engine.generator.generate_types([cell], 4, "euler", seed=sample_seed(7, 0))
    np.testing.assert_array_equal(crystal.lattice, ref.lattice)
    np.testing.assert_array_equal(crystal.frac_coords, ref.frac_coords)
    assert crystal.provenance.source == "sampler"
    assert crystal.provenance.generator == engine.info.checkpoint_id
    assert crystal.properties["nfe"] == 4


def test_results_do_not_depend_on_batching(engine):
    alone = engine.generate([_chunk("BaTiO3", 3, seed=11)])[0]
    split = engine.generate([_chunk("BaTiO3", 2, seed=11), _chunk("BaTiO3", 1, seed=11, first=2)])
    merged = engine.generate(
        [
            _chunk("KNbO3", 2, seed=1, sampler="heun"),
            _chunk("BaTiO3", 3, seed=11),
            _chunk("CaTiO3", 4, seed=2),
        ]
    )[1]
    for other in ([*split[0], *split[1]], merged):
        for a, b in zip(alone, other, strict=True):
            assert a.id == b.id
            np.testing.assert_allclose(a.lattice, b.lattice, atol=1e-4)
            np.testing.assert_allclose(a.frac_coords, b.frac_coords, atol=1e-4)
    assert len({c.id for c in alone}) == 3
    assert not np.allclose(alone[0].frac_coords, alone[1].frac_coords)
    (retried,) = engine.generate([_chunk("BaTiO3", 3, seed=11).retry([1])])[0]
    assert retried.id == alone[1].id
    assert not np.allclose(retried.frac_coords, alone[1].frac_coords)  # a new attempt
