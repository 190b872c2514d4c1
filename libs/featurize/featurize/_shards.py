"""One shard: canonical per-crystal arrays, concatenated, and optional clean-structure graphs.

A shard is a plain dict of tensors (and lists of str) saved with ``torch.save``; field names are
``periodic.keys``. Crystal b owns atoms ``atom_offsets[b]:atom_offsets[b + 1]`` and edges
``edge_offsets[b]:edge_offsets[b + 1]``; ``edge_index`` holds shard-wide atom indices. Integer
tensors are stored in the smallest integer type that holds them; ``load_shard`` returns int64.
"""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from periodic import keys, knn_graph, neighbor_list, sort_edges
from xtal import Crystal

from featurize._config import FeaturizerConfig

_INT_TYPES = (torch.int8, torch.int16, torch.int32, torch.int64)


def build_shard(
    crystals: Sequence[Crystal], hashes: Sequence[str], config: FeaturizerConfig
) -> dict[str, Any]:
    """The shard dict of ``crystals`` (already canonical when the config asks for it)."""
    num_atoms = torch.tensor([c.num_atoms for c in crystals], dtype=torch.long)
    shard: dict[str, Any] = {
        keys.LATTICE: torch.tensor(np.stack([c.lattice for c in crystals])),  # (B, 3, 3)
        keys.FRAC_COORDS: torch.tensor(np.concatenate([c.frac_coords for c in crystals])),
        keys.ATOMIC_NUMBERS: torch.tensor(np.concatenate([c.atomic_numbers for c in crystals])),
        keys.NUM_ATOMS: num_atoms,
        keys.ATOM_OFFSETS: _offsets(num_atoms),
        keys.CRYSTAL_HASH: list(hashes),
        keys.CRYSTAL_ID: [c.id for c in crystals],
        keys.PROPERTIES: _properties(crystals),
    }
    if config.cutoff is not None:
        shard.update(_graph(shard, config))
    return {name: _compact(value) for name, value in shard.items()}


def save_shard(shard: dict[str, Any], path: Path) -> None:
    """Write a shard (plain tensors, lists and dicts only)."""
    torch.save(shard, path)


def load_shard(path: str | Path) -> dict[str, Any]:
    """Read a shard with ``torch.load(weights_only=True)``; integer tensors come back as int64."""
    shard = torch.load(path, weights_only=True)
    return {
        name: value.long()
        if isinstance(value, torch.Tensor) and value.dtype in _INT_TYPES
        else value
        for name, value in shard.items()
    }


def _offsets(counts: torch.Tensor) -> torch.Tensor:
    return torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)])


def _properties(crystals: Sequence[Crystal]) -> dict[str, torch.Tensor]:
    names = sorted({name for c in crystals for name in c.properties})
    return {
        name: torch.tensor([c.properties.get(name, float("nan")) for c in crystals])
        for name in names
    }


def _graph(shard: dict[str, Any], config: FeaturizerConfig) -> dict[str, torch.Tensor]:
    """Radius graph at the cutoff (sorted by (i, j, k)), or the K nearest images within it
    (sorted by source, then nearest first); either way grouped by crystal.
    """
    args = (shard[keys.LATTICE], shard[keys.FRAC_COORDS])
    num_atoms = shard[keys.NUM_ATOMS]
    if config.max_neighbors is None:
        graph = sort_edges(neighbor_list(*args, config.cutoff, num_atoms=num_atoms))
    else:
        graph = knn_graph(
            *args, config.max_neighbors, num_atoms=num_atoms, max_radius=config.cutoff
        )
    batch = torch.repeat_interleave(torch.arange(num_atoms.shape[0]), num_atoms)
    per_crystal = torch.bincount(batch[graph.edge_index[0]], minlength=num_atoms.shape[0])
    return {
        keys.EDGE_INDEX: graph.edge_index,
        keys.CELL_OFFSETS: graph.cell_offsets,
        keys.EDGE_OFFSETS: _offsets(per_crystal),
    }


def _compact(value: Any) -> Any:
    """Integer tensors in the smallest type that holds their values."""
    if not isinstance(value, torch.Tensor) or value.dtype not in _INT_TYPES or value.numel() == 0:
        return value
    low, high = int(value.min()), int(value.max())
    for dtype in _INT_TYPES:
        info = torch.iinfo(dtype)
        if info.min <= low and high <= info.max:
            return value.to(dtype)
    return value
