"""The ion-exchange de novo baseline (checkpoint kind dng/ion_exchange), on real crystals."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from autoperi_data import read_records
from pymatgen.core import Composition
from smact.screening import smact_validity

from autoperi_model import (
    CheckpointMismatch,
    Generator,
    SampleSpec,
    sample_seed,
    save_ion_exchange,
)
from autoperi_model._ion_exchange import IonExchangeGenerator, _oxidation_states, reduced_key
from autoperi_model._substitution import SubstitutionOptions
from autoperi_model._symmetry_data import SymmetricCrystals, analyze_many
from autoperi_model._template_build import library_from
from autoperi_model._template_generator import save_templates
from autoperi_model._templates import ELEMENTS


@pytest.fixture(scope="module")
def checkpoint(data_dir, tmp_path_factory):
    """An ion-exchange checkpoint over 400 MP-20 training crystals, and their library."""
    records = itertools.islice(read_records(data_dir / "mp_20/assembled/train.csv"), 400)
    crystals = [r.crystal for r in records]
    analyses = analyze_many([(c.lattice, c.frac_coords, c.atomic_numbers) for c in crystals])
    library = library_from(SymmetricCrystals.from_analyses([a for a in analyses if a]))
    root = tmp_path_factory.mktemp("ion_exchange")
    save_templates(root / "templates", library, None, {"data": "test library"})
    save_ion_exchange(root / "templates", root / "ion_exchange")
    return root / "ion_exchange", library


def test_a_sample_is_a_template_with_similar_ions_exchanged(checkpoint):
    path, library = checkpoint
    gen = Generator.from_checkpoint(path, tasks=("dng",))
    states = _oxidation_states()
    known = {reduced_key(library.crystals.numbers_of(i)) for i in range(len(library))}
    for crystal in gen.generate_dng(40, seed=3):
        index = int(crystal.properties["template"])
        old, new = library.crystals.numbers_of(index), crystal.atomic_numbers
        assert reduced_key(new) not in known  # novel composition
        pairs = set(zip(old.tolist(), new.tolist(), strict=True))
        assert len({a for a, _ in pairs}) == len(pairs) == len({b for _, b in pairs})  # a bijection
        assert any(a != b for a, b in pairs)
        assert all(states[a] & states[b] for a, b in pairs)
        frac = library.crystals.frac_coords[library.crystals.atoms_of(index)].numpy()
        np.testing.assert_allclose(crystal.frac_coords, frac % 1.0, atol=1e-9)
        ratio = np.linalg.det(crystal.lattice) / np.linalg.det(library.crystals.lattice[index])
        radius = ELEMENTS["radius"]
        expected = np.sum(radius[new] ** 3) / np.sum(radius[old] ** 3)
        assert ratio == pytest.approx(expected, rel=1e-6)


def test_samples_depend_on_their_own_seed_only(checkpoint):
    gen = Generator.from_checkpoint(checkpoint[0], tasks=("dng",))
    together = gen.generate_dng(6, seed=7)
    alone = [gen.sample([SampleSpec(s.seed)])[0] for s in _specs(6, 7)]
    for a, b in zip(together, alone, strict=True):
        assert a.atomic_numbers.tolist() == b.atomic_numbers.tolist()
        np.testing.assert_array_equal(a.lattice, b.lattice)
    other = gen.generate_dng(6, seed=8)
    assert [c.formula for c in other] != [c.formula for c in together]


def test_atom_counts_and_elements_are_honoured_or_refused(checkpoint):
    gen = Generator.from_checkpoint(checkpoint[0], tasks=("dng",))
    small = gen.generate_dng(10, seed=0, atoms=(2, 4))
    assert all(2 <= len(c.atomic_numbers) <= 4 for c in small)
    up_to_actinium = tuple(range(1, 90))
    assert all(
        set(c.atomic_numbers.tolist()) <= set(up_to_actinium)
        for c in gen.generate_dng(5, elements=up_to_actinium)
    )
    with pytest.raises(ValueError, match="no template has"):
        gen.generate_dng(1, atoms=(500, 600))
    with pytest.raises(ValueError, match="ion-exchanged into elements He"):
        gen.generate_dng(1, elements=(2,))  # helium alone


def test_the_checkpoint_serves_de_novo_only(checkpoint):
    with pytest.raises(CheckpointMismatch, match="dng/ion_exchange"):
        Generator.from_checkpoint(checkpoint[0], tasks=("csp",))


def _specs(n: int, seed: int) -> list[SampleSpec]:
    return [SampleSpec(sample_seed(seed, i)) for i in range(n)]


def test_a_learned_checkpoint_gives_balanced_samples_scaled_by_fitted_volumes(checkpoint, tmp_path):
    path, library = checkpoint
    options = SubstitutionOptions(learned_partners=True, charge_balanced=True, learned_volumes=True)
    save_ion_exchange(path.parent / "templates", tmp_path / "learned", options)
    gen = Generator.from_checkpoint(tmp_path / "learned", tasks=("dng",))
    assert isinstance(gen, IonExchangeGenerator) and gen.options == options
    for crystal in gen.generate_dng(30, seed=1):
        assert smact_validity(Composition(crystal.to_pymatgen().composition.reduced_formula))
        index = int(crystal.properties["template"])
        old, new = library.crystals.numbers_of(index), crystal.atomic_numbers
        ratio = np.linalg.det(crystal.lattice) / np.linalg.det(library.crystals.lattice[index])
        assert ratio == pytest.approx(gen.volumes[new].sum() / gen.volumes[old].sum(), rel=1e-6)
