"""Template retrieval, ranking and the csp/templates checkpoint kind, on real crystals."""

from __future__ import annotations

import collections
import itertools

import numpy as np
import pytest
import spglib
import torch
from autoperi_data import read_records
from pymatgen.analysis.structure_matcher import StructureMatcher

from autoperi_model import Config, Generator, SampleSpec, build_model, save_checkpoint
from autoperi_model._ranking import fit_ranker, listwise_loss
from autoperi_model._symmetry_data import SymmetricCrystals, analyze_many
from autoperi_model._template_build import library_from
from autoperi_model._template_generator import save_templates
from autoperi_model._templates import ELEMENTS, FEATURES, SAME_STRUCTURE, composition_key


@pytest.fixture(scope="module")
def library(data_dir):
    """A library of 300 MP-20 training crystals and 100 Perov-5 ones."""
    crystals = [
        r.crystal
        for r in itertools.chain(
            itertools.islice(read_records(data_dir / "mp_20/assembled/train.csv"), 300),
            itertools.islice(read_records(data_dir / "perov_5/train.csv"), 100),
        )
    ]
    analyses = analyze_many([(c.lattice, c.frac_coords, c.atomic_numbers) for c in crystals])
    return library_from(SymmetricCrystals.from_analyses([a for a in analyses if a is not None]))


def _brute_force_cost(query: np.ndarray, template: np.ndarray) -> float:
    """Least total Mendeleev distance over every count-preserving assignment."""
    q, t = collections.Counter(query.tolist()), collections.Counter(template.tolist())
    best = np.inf
    for perm in itertools.permutations(list(t)):
        if [t[z] for z in perm] != [q[z] for z in q]:
            continue
        cost = sum(q[a] * abs(ELEMENTS["mendeleev"][a] - ELEMENTS["mendeleev"][b])
                   for a, b in zip(q, perm, strict=True))  # fmt: skip
        best = min(best, cost)
    return best


def test_candidates_share_the_key_and_map_elements_bijectively(library):
    for i in range(0, len(library), 7):
        numbers = library.crystals.numbers_of(i)
        for cand in library.candidates(numbers, exclude=i):
            assert cand.index != i
            template = library.crystals.numbers_of(cand.index)
            assert composition_key(template) == composition_key(numbers)
            mapped = np.array([cand.mapping[int(z)] for z in template])
            assert sorted(mapped.tolist()) == sorted(numbers.tolist())
            assert np.isfinite(cand.features).all() and len(cand.features) == len(FEATURES)


def test_mendeleev_assignment_is_the_least_cost_one(library):
    col = FEATURES.index("mendeleev")
    for i in range(0, len(library), 11):
        numbers = library.crystals.numbers_of(i)
        for cand in library.candidates(numbers, exclude=i):
            template = library.crystals.numbers_of(cand.index)
            expected = _brute_force_cost(numbers, template) / len(numbers)
            assert cand.features[col] == pytest.approx(expected)


def test_a_crystal_is_its_own_best_lookup_template(library):
    rank = FEATURES.index("mendeleev_rank")
    for i in range(0, len(library), 13):
        best = min(
            library.candidates(library.crystals.numbers_of(i)), key=lambda c: c.features[rank]
        )
        assert best.features[FEATURES.index("mendeleev")] == 0
        assert sorted(library.crystals.numbers_of(best.index)) == sorted(
            library.crystals.numbers_of(i)
        )


def test_known_structure_is_a_structure_match_with_a_crystal_of_the_query_composition(library):
    col = FEATURES.index("known_structure")
    matcher = StructureMatcher(**SAME_STRUCTURE)
    for i in range(0, len(library), 9):
        numbers = library.crystals.numbers_of(i)
        own = [c for c in library.candidates(numbers) if c.index == i]
        assert own[0].features[col] == 1  # the queried crystal itself, when not left out
        assert all(c.features[col] == 0 for c in library.candidates(numbers, match_known=False))
        same = [
            j for j in range(len(library))
            if j != i and sorted(library.crystals.numbers_of(j)) == sorted(numbers)
        ]  # fmt: skip
        structures = [_as_is(library, j) for j in same]
        for cand in library.candidates(numbers, exclude=i):
            mine = library.substituted(cand.index, cand.mapping).to_pymatgen()
            expected = any(matcher.fit(mine, s) for s in structures)
            assert cand.features[col] == float(expected)


def _as_is(library, j):
    identity = {int(z): int(z) for z in library.crystals.numbers_of(j)}
    return library.substituted(j, identity).to_pymatgen()


def test_substitution_scores_are_symmetric_with_the_diagonal_on_top(library):
    s = library.substitution
    np.testing.assert_allclose(s, s.T)
    assert (np.diag(s) >= s.max(axis=1) - 1e-12).all()


def test_substituted_template_has_the_query_composition(library):
    numbers = library.crystals.numbers_of(5)
    for cand in library.candidates(numbers, exclude=5)[:5]:
        arrays = library.substituted(cand.index, cand.mapping)
        assert sorted(arrays.atomic_numbers.tolist()) == sorted(numbers.tolist())
        np.testing.assert_array_equal(arrays.lattice, library.crystals.lattice[cand.index].numpy())


def test_listwise_loss_is_the_negative_log_softmax_mass_of_the_positives():
    logits = torch.tensor([1.0, 2.0, 0.5, -1.0, 3.0])
    labels = torch.tensor([0.0, 1.0, 1.0, 0.0, 0.0])
    groups = torch.tensor([0, 0, 0, 1, 1])  # group 1 has no positive: skipped
    p = torch.softmax(logits[:3], 0)
    expected = -torch.log(p[1] + p[2])
    torch.testing.assert_close(listwise_loss(logits, labels, groups, 2), expected)


def test_ranker_learns_which_feature_marks_the_match():
    rng = np.random.default_rng(0)
    features, labels = [], []
    for _ in range(300):
        f = rng.normal(size=(6, 3))
        y = np.zeros(6)
        y[np.argmax(f[:, 1])] = 1.0  # the candidate with the largest second feature matches
        features.append(f)
        labels.append(y)
    ranker = fit_ranker(features, labels, hidden=8, epochs=200)
    hits = [ranker.score(f).argmax() == y.argmax() for f, y in zip(features, labels, strict=True)]
    assert np.mean(hits) > 0.9


def test_checkpoint_round_trip_and_sampling(library, tmp_path):
    ranker = fit_ranker([np.random.default_rng(1).normal(size=(4, len(FEATURES)))], [np.eye(4)[0]])
    save_templates(tmp_path, library, ranker, {"hidden": 32, "data": "test library"})
    gen = Generator.from_checkpoint(tmp_path, tasks=("csp",))
    numbers = library.crystals.numbers_of(3)
    crystals = gen.generate_types([numbers] * 3, seed=0)
    assert [sorted(c.atomic_numbers.tolist()) for c in crystals] == [sorted(numbers.tolist())] * 3
    used = [int(c.properties["template"]) for c in crystals]
    assert len(set(used)) == min(3, len(gen.ranked(numbers)))  # k samples: k templates
    same_row = gen.generate_types([numbers] * 2, seed=0, indices=[0, 0])
    assert [c.properties["template"] for c in same_row] == [used[0]] * 2  # k = 1 per query
    orphan = np.array([1] * 11 + [2])
    assert gen.serves(numbers) and not gen.serves(orphan)
    with pytest.raises(ValueError, match="no template"):
        gen.generate_types([orphan])


def test_a_ranker_reads_the_features_it_was_trained_on(library, tmp_path):
    older = list(FEATURES[:-1])  # a checkpoint built before the newest feature existed
    ranker = fit_ranker([np.random.default_rng(2).normal(size=(4, len(older)))], [np.eye(4)[0]])
    save_templates(tmp_path, library, ranker, {"hidden": 32, "features": older})
    gen = Generator.from_checkpoint(tmp_path, tasks=("csp",))
    numbers = library.crystals.numbers_of(3)
    cands = library.candidates(numbers)
    scores = ranker.score(np.stack([c.features[:-1] for c in cands]))
    expected = [cands[i].index for i in np.argsort(-scores, kind="stable")]
    assert [c.index for c in gen.ranked(numbers)] == expected


def test_a_tampered_library_is_refused(library, tmp_path):
    save_templates(tmp_path, library, None, {})
    path = tmp_path / "templates.npz"
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(ValueError, match="sha256"):
        Generator.from_checkpoint(tmp_path)


def test_a_symmetric_flow_keeps_each_template_s_space_group(library, tmp_path):
    """With a (here untrained) symmetric flow under flow/, every sample is exactly in the space
    group of its template, whatever the network predicts, from any start time."""
    config = Config(task="csp", flow={"symmetric": True}).updated(
        backbone={"hidden": 16, "layers": 1, "num_rbf": 8, "time_dim": 8}
    )
    model = build_model(config, volume_per_atom=15.0)
    fields = {"config": config, "data_version": "test", "volume_per_atom": 15.0, "step": 0,
              "train_seconds": 0.0, "metrics": {}}  # fmt: skip
    save_checkpoint(tmp_path / "flow", model.state_dict(), None, fields)
    for start in (0.0, 0.8):
        save_templates(tmp_path, library, None, {"start_time": start})
        gen = Generator.from_checkpoint(tmp_path)
        cells = [library.crystals.numbers_of(i) for i in range(0, 60, 6)]
        for crystal in gen.generate_types(cells, steps=4, seed=1):
            template = int(crystal.properties["template"])
            found = spglib.get_symmetry_dataset(
                (crystal.lattice, crystal.frac_coords, crystal.atomic_numbers), symprec=1e-3
            )
            assert found.number == int(library.crystals.space_group[template])


def test_space_group_condition_and_sample_index_choose_the_template(library, tmp_path):
    save_templates(tmp_path, library, None, {})
    gen = Generator.from_checkpoint(tmp_path)
    numbers = library.crystals.numbers_of(3)
    groups = {int(library.crystals.space_group[c.index]) for c in gen.ranked(numbers)}
    wanted = sorted(groups)[-1]
    specs = [SampleSpec(i, numbers, conditions={"space_group_number": wanted}) for i in range(2)]
    for crystal in gen.sample(specs):
        assert int(library.crystals.space_group[int(crystal.properties["template"])]) == wanted
    with pytest.raises(ValueError, match="no template in space group 2 "):
        gen.sample([SampleSpec(0, numbers, conditions={"space_group_number": 2})])
    second = gen.sample([SampleSpec(0, numbers, index=1)])[0].properties["template"]
    assert second == gen.ranked(numbers)[1].index  # the index-th best, whatever the call holds


def test_a_fallback_flow_serves_the_cells_no_template_fits(library, tmp_path):
    """Specs whose cell has no template go to the P1 CSP flow under fallback/, in place; a
    space-group condition on such a cell is still an error (a P1 flow cannot honour it)."""
    config = Config(task="csp").updated(
        backbone={"hidden": 16, "layers": 1, "num_rbf": 8, "time_dim": 8}
    )
    model = build_model(config, volume_per_atom=15.0)
    fields = {"config": config, "data_version": "test", "volume_per_atom": 15.0, "step": 0,
              "train_seconds": 0.0, "metrics": {}}  # fmt: skip
    save_checkpoint(tmp_path / "fallback", model.state_dict(), None, fields)
    save_templates(tmp_path, library, None, {})
    gen = Generator.from_checkpoint(tmp_path)
    orphan = np.array([1] * 11 + [2])
    cells = [library.crystals.numbers_of(3), orphan, library.crystals.numbers_of(5)]
    crystals = gen.generate_types(cells, steps=3, seed=0)
    assert [sorted(c.atomic_numbers.tolist()) for c in crystals] == [
        sorted(c.tolist()) for c in cells
    ]
    assert ["template" in c.properties for c in crystals] == [True, False, True]
    assert crystals[1].provenance.generator == gen.fallback.checkpoint_id
    assert crystals[1].properties["nfe"] > 0
    with pytest.raises(ValueError, match="no template in space group 225"):
        gen.sample([SampleSpec(0, orphan, conditions={"space_group_number": 225})])
