"""Pure functions of the embedded version store: canonical encodings, diff and three-way merge.

Encodings are canonical JSON (sorted keys, no spaces, UTF-8), so an object's id, the sha256 of
its bytes, depends on its content only:
  tree   = {"format": 1, "entries": {key: [sha256, size], ...}}
  commit = {"format": 1, "parents": [...], "tree": id, "message": str,
            "metadata": {str: str}, "timestamp": float}
"""

import json
from collections.abc import Iterable, Mapping

from storage._errors import CorruptObject
from storage._keys import sha256_bytes
from storage._versioning import Change, Commit, TreeEntry

FORMAT = 1
Tree = Mapping[str, TreeEntry]


def _canonical(obj: object) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def encode_tree(tree: Tree) -> tuple[str, bytes]:
    """(tree id, canonical bytes) of a tree."""
    data = _canonical(
        {"format": FORMAT, "entries": {k: [e.sha256, e.size] for k, e in tree.items()}}
    )
    return sha256_bytes(data), data


def decode_tree(tree_id: str, data: bytes) -> dict[str, TreeEntry]:
    """Parse tree bytes, checking that they hash to `tree_id` (CorruptObject otherwise)."""
    _verify(tree_id, data, "tree")
    entries = json.loads(data)["entries"]
    return {key: TreeEntry(sha, size) for key, (sha, size) in entries.items()}


def encode_commit(
    parents: Iterable[str],
    tree_id: str,
    message: str,
    metadata: Mapping[str, str],
    timestamp: float,
) -> tuple[Commit, bytes]:
    """(commit, canonical bytes); the commit id is the sha256 of the bytes."""
    record = {
        "format": FORMAT,
        "parents": list(parents),
        "tree": tree_id,
        "message": message,
        "metadata": {str(k): str(v) for k, v in metadata.items()},
        "timestamp": round(float(timestamp), 6),
    }
    data = _canonical(record)
    return _commit_from_record(sha256_bytes(data), record), data


def decode_commit(commit_id: str, data: bytes) -> Commit:
    """Parse commit bytes, checking that they hash to `commit_id` (CorruptObject otherwise)."""
    _verify(commit_id, data, "commit")
    return _commit_from_record(commit_id, json.loads(data))


def _commit_from_record(commit_id: str, record: dict) -> Commit:
    return Commit(
        id=commit_id,
        parents=tuple(record["parents"]),
        tree=record["tree"],
        message=record["message"],
        metadata=dict(record["metadata"]),
        timestamp=record["timestamp"],
    )


def _verify(object_id: str, data: bytes, what: str) -> None:
    if sha256_bytes(data) != object_id:
        raise CorruptObject(f"{what} {object_id} is corrupt: its bytes hash differently")


def apply_changes(tree: Tree, adds: Mapping[str, TreeEntry], removes: Iterable[str]) -> dict:
    """A new tree: `tree` with `removes` dropped (absent keys ignored), then `adds` set."""
    result = dict(tree)
    for key in removes:
        result.pop(key, None)
    result.update(adds)
    return result


def diff_trees(left: Tree, right: Tree, prefix: str = "") -> list[Change]:
    """Changes from `left` to `right` for keys starting with `prefix`, sorted by key."""
    keys = sorted(k for k in set(left) | set(right) if k.startswith(prefix))
    changes = []
    for key in keys:
        a, b = left.get(key), right.get(key)
        if a == b:
            continue
        kind = "added" if a is None else "removed" if b is None else "changed"
        changes.append(Change(key, kind, a, b))
    return changes


def three_way_merge(base: Tree, ours: Tree, theirs: Tree) -> tuple[dict, list[str]]:
    """Merge two trees that descend from `base`; return (merged tree, sorted conflicting keys).

    Per key: equal on both sides -> kept; changed on one side only -> that side wins; changed on
    both sides differently (including changed vs removed) -> conflict.
    """
    merged: dict[str, TreeEntry] = {}
    conflicts = []
    for key in sorted(set(base) | set(ours) | set(theirs)):
        b, o, t = base.get(key), ours.get(key), theirs.get(key)
        if o == t:
            pick = o
        elif o == b:
            pick = t
        elif t == b:
            pick = o
        else:
            conflicts.append(key)
            continue
        if pick is not None:
            merged[key] = pick
    return merged, conflicts
