"""Scorer pieces without a server: novelty index, option and crystal conversion, the pool."""

import math

import numpy as np
import pytest
from autoperi.scorer.v1 import scorer_pb2
from autoperi_data import CrystalArrays
from svc_kit import InvalidInput
from xtal import Crystal
from xtal.convert import to_proto

from scorer_svc import NoveltyIndex, ScoreOptions
from scorer_svc._convert import crystals_from_request, options_from_proto, options_to_proto


def _index(crystals):
    items = [(c.content_hash(), to_proto(c).SerializeToString()) for c in crystals]
    return NoveltyIndex("ref", "c0", items)


def test_novelty_index_matches_by_hash_and_by_structure(real_crystals):
    index = _index(real_crystals[:3])
    known = real_crystals[1]
    assert len(index) == 3
    assert index.match(known, known.content_hash()) == known.content_hash()
    doubled = Crystal.from_pymatgen(known.to_pymatgen().make_supercell([2, 1, 1]))
    assert index.match(doubled) == known.content_hash()  # no hash given: StructureMatcher
    assert index.match(real_crystals[3], real_crystals[3].content_hash()) is None
    assert index.match(real_crystals[5]) is None  # a formula absent from the reference


def test_novelty_index_tells_same_formula_different_structures_apart(real_crystals):
    known = real_crystals[0]
    strained = known.replace(lattice=known.lattice * np.array([[1.6], [1.0], [1.0]]))
    assert _index([known]).match(strained) is None


def test_options_defaults_follow_the_proto():
    options = options_from_proto(scorer_pb2.ScoreOptions())
    assert options == ScoreOptions(fmax=0.1, symprec=0.1, min_valid_distance=0.5)
    assert options.novelty_reference is None and options.max_relax_steps == 0
    again = ScoreOptions(relax=True, fmax=0.05, symmetry="moyopy")
    assert options_from_proto(options_to_proto(again)) == again
    with pytest.raises(ValueError, match="unknown symmetry backend 'spg'"):
        ScoreOptions(symmetry="spg")


@pytest.mark.parametrize("field", ["fmax", "symprec", "min_valid_distance"])
@pytest.mark.parametrize("value", [-0.1, math.nan, math.inf])
def test_bad_numbers_in_options_are_invalid(field, value):
    with pytest.raises(InvalidInput, match=field):
        options_from_proto(scorer_pb2.ScoreOptions(**{field: value}))


def test_malformed_crystals_are_invalid_but_bad_numbers_are_refused_per_crystal(real_crystals):
    good = to_proto(real_crystals[0])
    flat = to_proto(real_crystals[0].replace(lattice=np.diag([4.0, 4.0, 0.0])))
    inf = to_proto(real_crystals[0])
    inf.lattice.a.x = math.inf
    huge = to_proto(real_crystals[0].replace(lattice=np.eye(3) * 1e6))
    crystals = crystals_from_request([good, flat, inf, huge])  # each a per-crystal error later
    assert crystals[1].volume == 0.0 and not np.isfinite(crystals[2].lattice).all()
    unknown = to_proto(real_crystals[0])
    unknown.sites[0].atomic_number = 0
    with pytest.raises(InvalidInput, match="crystal 1"):
        crystals_from_request([good, unknown])


@pytest.mark.slow
def test_pool_replaces_a_worker_that_died(real_crystals):
    from scorer_svc import PotentialPool
    from scorer_svc._pool import WorkerDied

    pool = PotentialPool()
    items = [CrystalArrays.of(c) for c in real_crystals[:2]]
    try:
        before, _ = pool.call("predict_batched", (items, 2, "e"))
        with pytest.raises(WorkerDied):
            pool.call("crash", ())
        results, _ = pool.score(items, ScoreOptions(), 2, None)  # a fresh worker
    finally:
        pool.close()
    assert [r.energy_per_atom for r in results] == pytest.approx(before, abs=1e-6)


@pytest.mark.parametrize("tunables", [None, ""], ids=["default", "off"])
def test_workers_get_the_malloc_settings_and_the_server_keeps_its_own(monkeypatch, tunables):
    import os

    from scorer_svc import PotentialPool
    from scorer_svc._pool import WORKER_MALLOC, PoolLimits

    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    limits = PoolLimits() if tunables is None else PoolLimits(glibc_tunables=tunables)
    pool = PotentialPool(limits)
    try:
        seen, _ = pool.call("getenv", ("GLIBC_TUNABLES",))
    finally:
        pool.close()
    assert seen == (WORKER_MALLOC if tunables is None else None)
    assert "GLIBC_TUNABLES" not in os.environ


def test_a_request_in_flight_when_the_core_closes_ends_unavailable(real_crystals):
    """close() drops the queued batches of a running request: its iterator ends with
    Unavailable instead of waiting forever for them (a thread that kept the server's process
    from exiting)."""
    import threading
    from concurrent.futures import Future

    from svc_kit import Unavailable

    from scorer_svc import CoreLimits, PotentialPool, ScorerCore

    core = ScorerCore(PotentialPool(), limits=CoreLimits(batch_size=1))
    _, batches = core.score(real_crystals[:6], ScoreOptions(symmetry="none"))
    first = next(batches)  # one worker: the second batch runs now, four are queued
    rest: Future = Future()

    def drain() -> None:
        try:
            rest.set_result(list(batches))
        except Exception as exc:
            rest.set_exception(exc)

    core.close()
    threading.Thread(target=drain, daemon=True).start()
    with pytest.raises(Unavailable, match="shutting down"):
        rest.result(timeout=120)
    assert len(first) == 1 and first[0].error is None
