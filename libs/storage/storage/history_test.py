"""Diff, three-way merge and merge-base against brute-force references."""

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from storage._history import ancestors, merge_base, walk_log
from storage._tree import apply_changes, diff_trees, three_way_merge
from storage._versioning import Commit, TreeEntry

KEYS = [f"k{i}" for i in range(8)]
entries = st.builds(TreeEntry, st.sampled_from(["a" * 64, "b" * 64, "c" * 64]), st.just(1))
trees = st.dictionaries(st.sampled_from(KEYS), entries, max_size=8)
edits = st.dictionaries(st.sampled_from(KEYS), st.one_of(st.none(), entries), max_size=8)


def _edit(tree, edit):
    adds = {k: v for k, v in edit.items() if v is not None}
    return apply_changes(tree, adds, [k for k, v in edit.items() if v is None])


@settings(max_examples=200, deadline=None)
@given(trees, edits, edits)
def test_three_way_merge_matches_the_per_key_rule(base, edit_ours, edit_theirs):
    ours, theirs = _edit(base, edit_ours), _edit(base, edit_theirs)
    merged, conflicts = three_way_merge(base, ours, theirs)
    for key in KEYS:
        b, o, t = base.get(key), ours.get(key), theirs.get(key)
        if o != b and t != b and o != t:
            assert key in conflicts
        else:
            assert key not in conflicts
            assert merged.get(key) == (t if o == b else o)
    if not conflicts:  # a clean merge equals applying both edits, whatever the order
        assert merged == _edit(
            ours, {k: theirs.get(k) for k in edit_theirs if theirs.get(k) != base.get(k)}
        )


@settings(max_examples=200, deadline=None)
@given(trees, trees)
def test_diff_replays_left_into_right(left, right):
    changes = diff_trees(left, right)
    assert [c.key for c in changes] == sorted({c.key for c in changes})
    replay = apply_changes(
        left,
        {c.key: c.right for c in changes if c.right is not None},
        [c.key for c in changes if c.kind == "removed"],
    )
    assert replay == right
    assert {c.kind for c in changes if c.key in left and c.key in right} <= {"changed"}


def _dag(edges: dict[str, tuple[str, ...]]):
    commits = {n: Commit(n, ps, "t", n, {}, float(i)) for i, (n, ps) in enumerate(edges.items())}
    return commits.__getitem__


def _lowest_common_ancestors(edges, a, b):
    """Brute force: common ancestors that are not an ancestor of another common ancestor."""
    anc = {n: ancestors(lambda c: edges[c], n) for n in edges}
    common = anc[a] & anc[b]
    return {c for c in common if not any(c != d and c in anc[d] for d in common)}


def test_merge_base_is_a_lowest_common_ancestor_including_criss_cross():
    #   r - x1 - m1 (merges y1) - x2        criss-cross: m1 and m2 both merge x1 and y1
    #    \  y1 - m2 (merges x1) - y2
    edges = {
        "r": (),
        "x1": ("r",),
        "y1": ("r",),
        "m1": ("x1", "y1"),
        "m2": ("y1", "x1"),
        "x2": ("m1",),
        "y2": ("m2",),
        "z": ("x1",),
    }
    commit_of = _dag(edges)
    for a, b in itertools.combinations(edges, 2):
        assert merge_base(commit_of, a, b) in _lowest_common_ancestors(edges, a, b)
    assert merge_base(commit_of, "x2", "y2") == "y1"  # LCAs x1 and y1 tie: the later one wins


def test_log_lists_every_ancestor_once_newest_first():
    edges = {"r": (), "a": ("r",), "b": ("r",), "m": ("a", "b"), "c": ("m",)}
    log = walk_log(_dag(edges), "c", None)
    assert [c.id for c in log] == ["c", "m", "b", "a", "r"]
    assert [c.id for c in walk_log(_dag(edges), "c", 2)] == ["c", "m"]
