"""Featuriser: cache keys, shard contents against pymatgen, statistics, cache hits."""

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from autoperi_data import csv_rows, read_records, split_path
from periodic import keys
from periodic.testing import compare_edge_lists
from pymatgen.core import Lattice, Structure
from xtal import Crystal

import featurize
from featurize import FeaturizerConfig, dataset_hash, featurize_split, load_shard


def _crystals(count: int = 11, seed: int = 0) -> list[Crystal]:
    """Random valid crystals (1-6 atoms of Li, O, Fe) with an energy property on some."""
    rng = np.random.default_rng(seed)
    crystals = []
    for n in range(count):
        lattice = Lattice.from_parameters(*rng.uniform(3.0, 6.0, 3), *rng.uniform(70, 110, 3))
        n_atoms = int(rng.integers(1, 7))
        species = rng.choice(["Li", "O", "Fe"], n_atoms).tolist()
        structure = Structure(lattice, species, rng.uniform(0, 1, (n_atoms, 3)))
        props = {"energy": float(n)} if n % 2 else {}
        crystals.append(Crystal.from_pymatgen(structure, id=f"c{n}", properties=props))
    return crystals


def _concatenated(split: featurize.FeaturizedSplit) -> dict:
    shards = list(split.shards())
    return {name: [shard[name] for shard in shards] for name in shards[0]}


def test_config_hash_and_validation() -> None:
    assert FeaturizerConfig().config_hash() == FeaturizerConfig().config_hash()
    assert FeaturizerConfig(cutoff=5.0).config_hash() != FeaturizerConfig(cutoff=6.0).config_hash()
    with pytest.raises(ValueError, match="cutoff"):
        FeaturizerConfig(cutoff=-1.0)
    with pytest.raises(ValueError, match="max_neighbors"):
        FeaturizerConfig(max_neighbors=12)
    with pytest.raises(ValueError, match="shard_size"):
        FeaturizerConfig(shard_size=0)


def test_dataset_hash_is_sha256_of_sorted_hashes() -> None:
    hashes = ["b" * 64, "a" * 64, "c" * 64]
    expected = hashlib.sha256("".join(f"{h}\n" for h in sorted(hashes)).encode()).hexdigest()
    assert dataset_hash(hashes) == expected == dataset_hash(reversed(hashes))


def test_shards_hold_canonical_arrays_and_pymatgen_graphs(tmp_path: Path) -> None:
    crystals = _crystals()
    config = FeaturizerConfig(cutoff=4.0, shard_size=4)
    split = featurize_split(crystals, tmp_path, config)
    assert len(split.shard_files) == 3 and split.num_rejected == 0
    assert split.dataset_hash == dataset_hash(c.content_hash() for c in crystals)
    shards = list(split.shards())
    assert sum(len(s[keys.CRYSTAL_ID]) for s in shards) == len(crystals)
    index = 0
    for shard in shards:
        for b in range(len(shard[keys.CRYSTAL_ID])):
            canonical = crystals[index].canonical()
            atoms = slice(*shard[keys.ATOM_OFFSETS][b : b + 2].tolist())
            np.testing.assert_array_equal(shard[keys.LATTICE][b].numpy(), canonical.lattice)
            np.testing.assert_array_equal(
                shard[keys.FRAC_COORDS][atoms].numpy(), canonical.frac_coords
            )
            np.testing.assert_array_equal(
                shard[keys.ATOMIC_NUMBERS][atoms].numpy(), canonical.atomic_numbers
            )
            _assert_graph_matches_pymatgen(shard, b, atoms, canonical, config.cutoff)
            index += 1
    energies = torch.cat([s[keys.PROPERTIES]["energy"] for s in shards])
    assert torch.isnan(energies[0::2]).all() and energies[1] == 1.0


def _assert_graph_matches_pymatgen(shard, b, atoms, crystal, cutoff) -> None:
    edges = slice(*shard[keys.EDGE_OFFSETS][b : b + 2].tolist())
    index = shard[keys.EDGE_INDEX][:, edges] - atoms.start
    offsets = shard[keys.CELL_OFFSETS][edges].numpy()
    frac = crystal.frac_coords
    vectors = (frac[index[1]] - frac[index[0]] + offsets) @ crystal.lattice
    ours = (index[0].numpy(), index[1].numpy(), offsets, np.linalg.norm(vectors, axis=-1))
    reference = crystal.to_pymatgen().get_neighbor_list(cutoff)
    result = compare_edge_lists(ours, reference, cutoff)
    assert result.identical, result


def test_statistics_match_an_independent_count(tmp_path: Path) -> None:
    crystals = _crystals()
    stats = featurize_split(crystals, tmp_path).stats
    structures = [c.to_pymatgen() for c in crystals]
    per_atom = [s.volume / len(s) for s in structures]
    assert stats.num_crystals == len(crystals)
    assert stats.atoms_per_cell == {
        n: sum(len(s) == n for s in structures) for n in sorted({len(s) for s in structures})
    }
    assert stats.volume_per_atom_mean == pytest.approx(np.mean(per_atom))
    assert stats.volume_per_atom_std == pytest.approx(np.std(per_atom))
    oxygen = sum(s.composition["O"] for s in structures)
    assert stats.element_atom_counts[8] == oxygen
    assert stats.element_crystal_counts[8] == sum("O" in s.composition for s in structures)
    assert sum(stats.element_frequencies().values()) == pytest.approx(1.0)


def test_cache_hit_and_records_change(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    crystals = _crystals()
    first = featurize_split(crystals, tmp_path, FeaturizerConfig(shard_size=5))
    monkeypatch.setattr("featurize._cache.build_shard", _fail)
    again = featurize_split(crystals, tmp_path, FeaturizerConfig(shard_size=5))
    assert again == first
    renamed = [c.replace(id=f"other-{c.id}") for c in crystals]
    with pytest.raises(AssertionError, match="rebuilt"):
        featurize_split(renamed, tmp_path, FeaturizerConfig(shard_size=5))


def _fail(*_args, **_kwargs):
    raise AssertionError("rebuilt although the cache is valid")


def test_knn_graphs_keep_the_nearest_within_the_cutoff(tmp_path: Path) -> None:
    config = FeaturizerConfig(cutoff=5.0, max_neighbors=6)
    shard = next(featurize_split(_crystals(), tmp_path, config).shards())
    index, offsets = shard[keys.EDGE_INDEX], shard[keys.CELL_OFFSETS].double()
    assert int(torch.bincount(index[0]).max()) <= 6
    batch = torch.repeat_interleave(torch.arange(len(shard[keys.NUM_ATOMS])), shard[keys.NUM_ATOMS])
    frac, lattice = shard[keys.FRAC_COORDS], shard[keys.LATTICE]
    delta = frac[index[1]] - frac[index[0]] + offsets
    lengths = torch.einsum("ei,eij->ej", delta, lattice[batch[index[0]]]).norm(dim=-1)
    assert bool((lengths < 5.0).all())


def test_featurize_a_csv_file_and_skip_parsing_on_rerun(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "small.csv"
    rows = csv_rows(split_path("mp_20", "test", data_dir).read_text())
    source.write_text("".join(rows[:26]))
    first_id = next(iter(read_records(source))).key
    cache = tmp_path / "cache"
    split = featurize_split(source, cache, FeaturizerConfig(cutoff=3.0))
    assert split.stats.num_crystals == 25 and split.num_rejected == 0
    monkeypatch.setattr("featurize._cache.read_records", _fail)
    assert featurize_split(source, cache, FeaturizerConfig(cutoff=3.0)) == split
    shard = load_shard(split.shard_paths[0])
    assert shard[keys.CRYSTAL_ID][0] == first_id


def test_empty_dataset_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no valid crystal"):
        featurize_split([], tmp_path)
