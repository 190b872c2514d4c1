"""Deterministic edge orders: lexicographic sorting of periodic graphs."""

from typing import TypeVar

import torch
from torch import Tensor

from periodic._radius import NeighborList, PeriodicGraph

Graph = TypeVar("Graph", PeriodicGraph, NeighborList)


def lexsort(keys: list[Tensor]) -> Tensor:
    """Permutation sorting by ``keys`` (each (E,)), the last key most significant, ties stable."""
    order = torch.arange(keys[0].shape[0], device=keys[0].device)
    for key in keys:  # least significant first; stable sorts keep the earlier keys' order
        order = order.index_select(0, torch.sort(key.index_select(0, order), stable=True).indices)
    return order


def sort_edges(graph: Graph) -> Graph:
    """The same graph (PeriodicGraph or NeighborList) with edges sorted by (source i, target j,
    image k) lexicographically.

    Grouping by source also groups edges by crystal, since each crystal's atoms are contiguous.
    """
    offsets = graph.cell_offsets
    order = lexsort([offsets[:, 2], offsets[:, 1], offsets[:, 0], *graph.edge_index.flip(0)])
    return type(graph)(
        *(
            field[:, order] if name == "edge_index" else field[order]
            for name, field in zip(graph._fields, graph, strict=True)
        )
    )
