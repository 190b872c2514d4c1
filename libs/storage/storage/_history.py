"""Commit-graph walks for the embedded version store: ancestry, merge base, log order.

`parents_of(commit_id) -> tuple[str, ...]` and `commit_of(commit_id) -> Commit` are injected, so
these functions are independent of where commits are stored.
"""

import heapq
from collections.abc import Callable
from itertools import count

from storage._versioning import Commit

ParentsOf = Callable[[str], tuple[str, ...]]


def ancestors(parents_of: ParentsOf, start: str) -> set[str]:
    """Every commit reachable from `start` through parents, `start` included."""
    seen = {start}
    stack = [start]
    while stack:
        for parent in parents_of(stack.pop()):
            if parent not in seen:
                seen.add(parent)
                stack.append(parent)
    return seen


def is_ancestor(parents_of: ParentsOf, candidate: str, descendant: str) -> bool:
    """True if `candidate` is `descendant` or one of its ancestors (stops at the first hit)."""
    seen = {descendant}
    stack = [descendant]
    while stack:
        node = stack.pop()
        if node == candidate:
            return True
        for parent in parents_of(node):
            if parent not in seen:
                seen.add(parent)
                stack.append(parent)
    return False


def generation_numbers(parents_of: ParentsOf, starts: set[str]) -> dict[str, int]:
    """Generation of each commit reachable from `starts`: 0 for a root, else 1 + max(parents)."""
    gen: dict[str, int] = {}
    for start in starts:
        stack = [start]
        while stack:
            node = stack[-1]
            if node in gen:
                stack.pop()
                continue
            pending = [p for p in parents_of(node) if p not in gen]
            if pending:
                stack.extend(pending)
            else:
                gen[node] = 1 + max((gen[p] for p in parents_of(node)), default=-1)
                stack.pop()
    return gen


def merge_base(commit_of: Callable[[str], Commit], a: str, b: str) -> str | None:
    """A best common ancestor of `a` and `b` (None if they share no history).

    Among the common ancestors, the one with the highest generation number cannot be an ancestor
    of another common ancestor, so it is a lowest common ancestor; ties (criss-cross histories)
    are broken by the later timestamp, then by id, deterministically.
    """

    def parents_of(cid: str) -> tuple[str, ...]:
        return commit_of(cid).parents

    common = ancestors(parents_of, a) & ancestors(parents_of, b)
    if not common:
        return None
    gen = generation_numbers(parents_of, common)
    return max(common, key=lambda c: (gen[c], commit_of(c).timestamp, c))


def walk_log(commit_of: Callable[[str], Commit], start: str, limit: int | None) -> list[Commit]:
    """Commits reachable from `start`, newest timestamp first, `start` first; at most `limit`."""
    tiebreak = count()
    first = commit_of(start)
    heap = [(-first.timestamp, next(tiebreak), first)]
    seen = {start}
    out: list[Commit] = []
    while heap and (limit is None or len(out) < limit):
        _, _, commit = heapq.heappop(heap)
        out.append(commit)
        for parent in commit.parents:
            if parent not in seen:
                seen.add(parent)
                pc = commit_of(parent)
                heapq.heappush(heap, (-pc.timestamp, next(tiebreak), pc))
    return out
