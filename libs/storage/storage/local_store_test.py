"""LocalObjectStore specifics: failed writes leave nothing, key/prefix collisions, temp cleanup."""

import os
import time

import pytest

from storage import InvalidKey, LocalObjectStore


def test_a_failed_write_leaves_neither_object_nor_temporary(tmp_path):
    store = LocalObjectStore(tmp_path)
    store.put_bytes("k", b"old")

    def explode(fh):
        fh.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        store._write_atomic("k", explode, sync=True)
    assert store.get_bytes("k") == b"old"
    assert os.listdir(tmp_path / ".autoperi" / "tmp") == []


def test_a_key_cannot_be_both_object_and_prefix(tmp_path):
    store = LocalObjectStore(tmp_path)
    store.put_bytes("a/b", b"x")
    with pytest.raises(InvalidKey):
        store.put_bytes("a", b"y")
    with pytest.raises(InvalidKey):
        store.put_bytes("a/b/c", b"y")
    assert list(store.list_keys()) == ["a/b"]
    (tmp_path / ".autoperi" / "tmp" / "leftover").write_bytes(b"")
    assert list(store.list_keys()) == ["a/b"]
    assert list(store.list_keys(".autoperi/tmp/")) == []  # bookkeeping is never listed


def test_cleanup_removes_only_old_temporaries(tmp_path):
    store = LocalObjectStore(tmp_path)
    old, new = tmp_path / ".autoperi" / "tmp" / "old", tmp_path / ".autoperi" / "tmp" / "new"
    old.write_bytes(b"left by a killed writer")
    new.write_bytes(b"in flight")
    past = time.time() - 7200
    os.utime(old, (past, past))
    assert store.cleanup_temporary(older_than_s=3600) == 1
    assert not old.exists() and new.exists()
