"""The engine: CSP with the same noise as the Generator and results independent of batching;
de novo with atom counts from the histogram in the requested range, the requested elements,
reproducible requests, and the rejections (engine ValueError, validation InvalidInput, a
checkpoint of the wrong task and a tampered one refused at load)."""

import dataclasses
import math
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from autoperi_model import (
    CheckpointMismatch,
    Generator,
    ModelGenerator,
    SampleSpec,
    UnsafeCheckpoint,
    parse_composition,
    sample_seed,
)
from autoperi_model.testing import tampered_checkpoint
from svc_kit import InvalidInput

from sampler_svc._engine import (
    Chunk,
    DeNovoSpec,
    GeneratorEngine,
    check_servable,
    load_engine,
)
from sampler_svc._jobs import Limits, SampleSpecIn, validate
from sampler_svc._launch import build_app
from sampler_svc._settings import SamplerSettings

CHECKPOINT = Path(__file__).resolve().parents[3] / "checkpoints" / "perov_5_csp"


@pytest.fixture(scope="module")
def engine() -> GeneratorEngine:
    return GeneratorEngine(Generator.from_checkpoint(CHECKPOINT))


def _chunk(
    formula: str, n: int, seed: int, first: int = 0, sampler: str = "euler", steps: int = 2
) -> Chunk:
    cell = parse_composition(formula)
    indices = tuple(range(first, first + n))
    return Chunk(seed=seed, indices=indices, steps=steps, sampler=sampler, cells=(cell,) * n)


def test_one_sample_equals_the_generator(engine):
    (crystal,) = engine.generate([_chunk("SrTiO3", 1, seed=7, steps=4)])[0]
    cell = parse_composition("SrTiO3")
    (ref,) = engine.generator.sample([SampleSpec(sample_seed(7, 0), cell)], 4, "euler")
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


# ---- de novo (task: dng) ---------------------------------------------------------------------
DNG = CHECKPOINT.parent / "perov_5_dng"
WIDE = (0, 0, 0, 10, 0, 30, 20, 0, 40)  # a histogram with several counts (Perov-5 has only 5)
LIMITS = Limits(max_samples=1024, max_atoms=100)


@pytest.fixture(scope="module")
def dng() -> GeneratorEngine:
    return load_engine(DNG)


@pytest.fixture(scope="module")
def wide(dng) -> GeneratorEngine:
    """The real dng model with the training histogram WIDE instead of Perov-5's."""
    base = dng.generator
    manifest = dataclasses.replace(base.manifest, num_atoms_counts=WIDE)
    return GeneratorEngine(ModelGenerator(base.model, manifest, base.checkpoint_id))


def _dng(
    n: int, seed: int, lo: int = 0, hi: int = 0, elements=(), first: int = 0, steps: int = 3
) -> Chunk:
    indices = tuple(range(first, first + n))
    return Chunk(seed, indices, steps, "euler", de_novo=DeNovoSpec(lo, hi, tuple(elements)))


def test_load_engine_picks_the_task(dng, engine):
    assert dng.info.supports_de_novo and not dng.info.supports_csp
    assert engine.info.supports_csp and not engine.info.supports_de_novo
    assert dng.info.atom_counts[5] == 11356


def _binomial_ok(hits: int, n: int, p: float, sigmas: float = 5.0) -> bool:
    return abs(hits - n * p) <= sigmas * math.sqrt(n * p * (1 - p)) + 1


def test_atom_counts_follow_the_histogram_within_the_range(wide):
    ranged, full = wide.generate([_dng(150, seed=1, lo=4, hi=6, steps=1), _dng(200, 2, steps=1)])
    sizes = Counter(c.num_atoms for c in ranged)
    assert set(sizes) == {5, 6}  # 3 and 8 have mass but lie outside 4..6
    assert _binomial_ok(sizes[5], 150, 30 / 50)
    sizes = Counter(c.num_atoms for c in full)  # 0..0: the whole histogram
    assert set(sizes) == {3, 5, 6, 8}
    for n, mass in ((3, 10), (5, 30), (6, 20), (8, 40)):
        assert _binomial_ok(sizes[n], 200, mass / 100)
    for crystal in [*ranged, *full]:
        assert crystal.atomic_numbers.min() >= 1  # every mask revealed


def test_atom_counts_do_not_depend_on_batching(wide):
    alone = wide.generate([_dng(4, seed=3, steps=1)])[0]
    merged = wide.generate([_dng(3, seed=9, steps=1), _dng(4, seed=3, steps=1)])[1]
    assert [c.id for c in alone] == [c.id for c in merged]
    assert [c.num_atoms for c in alone] == [c.num_atoms for c in merged]
    assert len({c.num_atoms for c in wide.generate([_dng(12, seed=3, steps=1)])[0]}) > 1


def test_elements_are_honoured(dng):
    batio3, li_o, free = dng.generate(
        [
            _dng(6, seed=4, elements=("Ba", "Ti", "O")),
            _dng(4, seed=5, elements=("Li", "O")),
            _dng(4, seed=6),
        ]
    )
    assert {int(z) for c in batio3 for z in c.atomic_numbers} <= {8, 22, 56}
    assert {int(z) for c in li_o for z in c.atomic_numbers} <= {3, 8}
    assert {int(z) for c in free for z in c.atomic_numbers} - {3, 8}  # the mask is per chunk
    (only_o,) = dng.generate([_dng(2, seed=7, elements=("O",), steps=2)])
    assert all((c.atomic_numbers == 8).all() and c.num_atoms == 5 for c in only_o)


def test_same_request_same_crystals(dng):
    first, again = (dng.generate([_dng(3, seed=8, elements=("Sr", "Ti", "O"))])[0] for _ in "ab")
    other = dng.generate([_dng(3, seed=9, elements=("Sr", "Ti", "O"))])[0]
    for a, b in zip(first, again, strict=True):
        assert a.id == b.id
        np.testing.assert_array_equal(a.atomic_numbers, b.atomic_numbers)
        np.testing.assert_array_equal(a.lattice, b.lattice)
        np.testing.assert_array_equal(a.frac_coords, b.frac_coords)
    assert not np.allclose(first[0].lattice, other[0].lattice)
    assert first[0].provenance.generator == dng.info.checkpoint_id
    (retried,) = dng.generate([_dng(3, seed=8, elements=("Sr", "Ti", "O")).retry([1])])[0]
    assert retried.id == first[1].id
    assert not np.allclose(retried.frac_coords, first[1].frac_coords)  # a new attempt


@pytest.mark.parametrize(
    ("chunk", "reason"),
    [
        (_chunk("SrTiO3", 1, seed=0), "dng/flow model .* cannot serve csp"),
        (_dng(1, 0, lo=6, hi=10), r"no training crystal has 6\.\.10 atoms"),
        (_dng(1, 0, elements=("Sr", "Xx")), "unknown symbols: 'Xx'"),
        (_dng(1, 0, elements=("O", "Og")), "Og are beyond Z = 100"),
    ],
    ids=["csp", "range", "element", "beyond-max-z"],
)
def test_engine_rejects_what_the_checkpoint_cannot_serve(dng, chunk, reason):
    with pytest.raises(ValueError, match=reason):
        dng.generate([_dng(2, seed=1), chunk])  # checked before anything is sampled


def _de_novo_spec(lo=0, hi=0, elements=(), **fields) -> SampleSpecIn:
    task = DeNovoSpec(lo, hi, tuple(elements))
    return SampleSpecIn(**{"task": "de_novo", "de_novo": task, "num_samples": 3, **fields})


def test_validate_narrows_the_range_to_the_histogram(dng, wide):
    job = validate(_de_novo_spec(seed=1), dng, LIMITS, arrival=0.0)
    assert job.de_novo == DeNovoSpec(5, 5) and (job.sampler, job.steps) == ("euler", 20)
    assert [c.num_atoms for c in job.chunks(32, 2048)] == [15]  # 3 samples x 5 atoms
    job = validate(_de_novo_spec(4, 7, ("Li", "O")), wide, LIMITS, arrival=0.0)
    assert job.de_novo == DeNovoSpec(5, 6, ("Li", "O"))
    assert validate(_de_novo_spec(), wide, LIMITS, 0.0).de_novo == DeNovoSpec(3, 8)


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        (_de_novo_spec(6, 0), r"no training crystal has 6\.\.100 atoms .*have 5\.\.5 atoms"),
        (_de_novo_spec(1, 4), r"no training crystal has 1\.\.4 atoms"),
        (_de_novo_spec(5, 4), "need 1 <= min_atoms <= max_atoms <= 100"),
        (_de_novo_spec(0, 101), "need 1 <= min_atoms <= max_atoms <= 100"),
        (_de_novo_spec(elements=("Fe", "Qq")), "unknown symbols: 'Qq'"),
        (_de_novo_spec(elements=("Md",)), "Md are beyond Z = 100"),
        (
            SampleSpecIn(task="csp", components=(("Sr", 1), ("Ti", 1), ("O", 3)), num_samples=1),
            "does not support CSP",
        ),
    ],
    ids=["above", "below", "min-over-max", "over-limit", "element", "beyond-max-z", "csp"],
)
def test_validate_rejects_de_novo_requests_with_the_reason(dng, spec, reason):
    with pytest.raises(InvalidInput, match=reason):
        validate(spec, dng, LIMITS, arrival=0.0)


def test_csp_checkpoint_rejects_de_novo(engine):
    with pytest.raises(InvalidInput, match="does not support de novo"):
        validate(_de_novo_spec(), engine, LIMITS, arrival=0.0)
    with pytest.raises(ValueError, match="does not support de novo"):
        engine.generate([_dng(1, seed=0)])


def test_the_sampler_refuses_a_lattice_checkpoint_with_the_reason():
    lattice = CHECKPOINT.parent / "mp_20_lattice"
    reason = (
        r"mp_20_lattice is a lattice/flow checkpoint \(lattice: restores the lattices of given "
        r"crystals\); it cannot serve csp or dng"
    )
    for refuse in (check_servable, load_engine, lambda p: build_app(SamplerSettings(checkpoint=p))):
        with pytest.raises(CheckpointMismatch, match=reason):
            refuse(lattice)
    assert load_engine(CHECKPOINT.parent / "perov_5_csp_diffusion").info.samplers == ("ddpm",)


SAFETY = "its weights (model.pt) are not a plain tensor file; refused for safety"


def test_a_checked_checkpoint_is_loaded_again_only_when_a_file_changes(tmp_path, monkeypatch):
    import shutil

    from sampler_svc import _engine

    copy = shutil.copytree(CHECKPOINT, tmp_path / "copy")
    loads = []
    monkeypatch.setattr(_engine, "load_engine", loads.append)
    _engine._check_once.cache_clear()
    check_servable(copy)
    check_servable(copy)
    assert len(loads) == 1
    (copy / "manifest.json").write_text((copy / "manifest.json").read_text() + " ")
    check_servable(copy)
    assert len(loads) == 2
    _engine._check_once.cache_clear()


def test_the_sampler_refuses_a_tampered_checkpoint_before_deploying(tmp_path):
    tampered = tampered_checkpoint(CHECKPOINT, tmp_path / "tampered")
    for refuse in (check_servable, load_engine, lambda p: build_app(SamplerSettings(checkpoint=p))):
        with pytest.raises(UnsafeCheckpoint, match=re.escape(SAFETY)):
            refuse(tampered)
    assert not (tampered / "unpickled").exists()  # nothing in the file ran


def test_serve_sampler_exits_with_the_reason_for_a_tampered_checkpoint(tmp_path):
    """`autoperi serve sampler` as an operator runs it: refused before Ray starts, exit 2."""
    tampered = tampered_checkpoint(CHECKPOINT, tmp_path / "tampered")
    command = [sys.executable, "-m", "autoperi_app.main", "serve", "sampler"]
    result = subprocess.run(
        [*command, "--checkpoint", str(tampered)], capture_output=True, text=True, timeout=300
    )
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 2, output
    assert SAFETY in output and "Traceback" not in output
    assert "weights_only" not in output and "internal error" not in output
    assert not (tampered / "unpickled").exists()


def test_a_template_checkpoint_serves_k_templates_across_chunks_and_the_space_group(
    data_dir, tmp_path
):
    """Split over two chunks, a request's samples are still its 1st, 2nd, ... templates, and a
    requested space group picks templates of that group only."""
    import itertools

    from autoperi_data import read_records
    from autoperi_model import SymmetricCrystals, analyze_many, library_from, save_templates

    crystals = [
        r.crystal for r in itertools.islice(read_records(data_dir / "perov_5/train.csv"), 200)
    ]
    analyses = analyze_many([(c.lattice, c.frac_coords, c.atomic_numbers) for c in crystals])
    library = library_from(SymmetricCrystals.from_analyses([a for a in analyses if a]))
    save_templates(tmp_path, library, None, {})
    engine = load_engine(tmp_path)
    assert "space_group_number" in engine.info.conditions
    cell = library.crystals.numbers_of(0)
    first = Chunk(seed=1, indices=(0, 1), steps=1, sampler="template", cells=(cell,) * 2)
    second = dataclasses.replace(first, indices=(2,), cells=(cell,))
    used = [c.properties["template"] for part in engine.generate([first, second]) for c in part]
    ranked = engine.generator.ranked(cell)
    assert used == [ranked[i].index for i in range(3)]
    group = int(library.crystals.space_group[ranked[1].index])
    wanted = dataclasses.replace(first, conditions={"space_group_number": group})
    for crystal in engine.generate([wanted])[0]:
        assert library.crystals.space_group[int(crystal.properties["template"])] == group
