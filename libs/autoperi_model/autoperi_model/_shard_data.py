"""Crystal tables from featurised tensor shards (the featurize library's shard dicts).

A shard holds, under the `periodic.keys` names, `lattice` (B, 3, 3), `frac_coords` (N, 3),
`atomic_numbers` (N,) and `num_atoms` (B,) for B crystals with N atoms in total; other fields
(graphs, hashes, properties) are ignored here: the model builds its graphs from noisy states.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from periodic import keys

from autoperi_model._batch import CrystalBatch, CrystalTable

_FIELDS = (keys.LATTICE, keys.FRAC_COORDS, keys.ATOMIC_NUMBERS, keys.NUM_ATOMS)


def table_from_shards(
    shards: Sequence[Mapping[str, Any]], keep: Callable[[str], bool] | None = None
) -> CrystalTable:
    """The crystals of `shards`, in order, as one float64 table (empty for no shards); with
    `keep`, only those whose id (`keys.CRYSTAL_ID`) it accepts.

    Raises ValueError naming the shard and field when a shard lacks a field or its sizes
    disagree (sum of num_atoms != atoms), or when `keep` is given and a shard has no ids.
    """
    if keep is not None:
        ids = [_ids(i, shard) for i, shard in enumerate(shards)]
        table = table_from_shards(shards)
        chosen = [i for i, ident in enumerate(x for part in ids for x in part) if keep(ident)]
        return CrystalTable.from_batch(table.gather(torch.tensor(chosen, dtype=torch.long)))
    parts = [_checked(i, shard) for i, shard in enumerate(shards)]
    if not parts:
        return CrystalTable.from_batch(_empty())
    lattice, frac, z, n = (torch.cat([p[k] for p in parts]) for k in range(4))
    batch = CrystalBatch(
        lattice=lattice,
        frac_coords=frac,
        atomic_numbers=z,
        batch=torch.repeat_interleave(torch.arange(len(n)), n),
        num_atoms=n,
    )
    return CrystalTable.from_batch(batch)


def _ids(index: int, shard: Mapping[str, Any]) -> list[str]:
    ids = shard.get(keys.CRYSTAL_ID)
    if not isinstance(ids, list) or len(ids) != len(shard[keys.NUM_ATOMS]):
        raise ValueError(f"shard {index} has no crystal id per crystal ({keys.CRYSTAL_ID})")
    return ids


def _checked(index: int, shard: Mapping[str, Any]) -> tuple[torch.Tensor, ...]:
    missing = [k for k in _FIELDS if not isinstance(shard.get(k), torch.Tensor)]
    if missing:
        raise ValueError(f"shard {index} lacks tensor field(s): {', '.join(missing)}")
    lattice = shard[keys.LATTICE].to(torch.float64)
    frac = shard[keys.FRAC_COORDS].to(torch.float64)
    z, n = shard[keys.ATOMIC_NUMBERS].long(), shard[keys.NUM_ATOMS].long()
    if lattice.shape != (len(n), 3, 3) or frac.shape != (len(z), 3) or int(n.sum()) != len(z):
        raise ValueError(
            f"shard {index} is inconsistent: {len(n)} crystals, lattice {tuple(lattice.shape)}, "
            f"{int(n.sum())} atoms by num_atoms but {len(z)} atomic numbers"
        )
    return lattice, frac % 1.0, z, n


def _empty() -> CrystalBatch:
    return CrystalBatch(
        lattice=torch.zeros((0, 3, 3), dtype=torch.float64),
        frac_coords=torch.zeros((0, 3), dtype=torch.float64),
        atomic_numbers=torch.zeros(0, dtype=torch.long),
        batch=torch.zeros(0, dtype=torch.long),
        num_atoms=torch.zeros(0, dtype=torch.long),
    )
