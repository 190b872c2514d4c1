"""Contract tests every ObjectStore backend must pass (local directory and S3 on moto)."""

import hashlib
import os
import threading
from pathlib import Path

import pytest

from storage import (
    CorruptObject,
    InvalidKey,
    ObjectNotFound,
    ObjectStore,
    PreconditionFailed,
    blob_key,
)


def test_put_get_roundtrip_overwrite_and_delete(object_store: ObjectStore):
    payload = bytes(range(256)) * 3
    info = object_store.put_bytes("crystals/a.bin", payload)
    assert info.size == len(payload)
    assert info.sha256 == hashlib.sha256(payload).hexdigest()
    assert object_store.get_bytes("crystals/a.bin") == payload
    object_store.put_bytes("crystals/a.bin", b"")
    assert object_store.get_bytes("crystals/a.bin") == b""
    assert object_store.exists("crystals/a.bin")
    object_store.delete("crystals/a.bin")
    object_store.delete("crystals/a.bin")  # idempotent
    assert not object_store.exists("crystals/a.bin")
    with pytest.raises(ObjectNotFound):
        object_store.get_bytes("crystals/a.bin")
    with pytest.raises(ObjectNotFound):
        object_store.stat("crystals/a.bin")


def test_list_is_a_sorted_string_prefix_listing(object_store: ObjectStore):
    keys = ["a/b/c", "a/b-c", "a/bc", "a/b/d", "b", "a/é"]
    for key in keys:
        object_store.put_bytes(key, key.encode())
    assert list(object_store.list_keys()) == sorted(keys)
    assert list(object_store.list_keys("a/b")) == ["a/b-c", "a/b/c", "a/b/d", "a/bc"]
    assert list(object_store.list_keys("a/b/")) == ["a/b/c", "a/b/d"]
    assert list(object_store.list_keys("zzz/")) == []


def test_stat_reports_size_sha256_and_a_changing_etag(object_store: ObjectStore):
    first = object_store.put_bytes("k", b"one")
    stat = object_store.stat("k")
    assert (stat.size, stat.sha256, stat.etag) == (
        3,
        hashlib.sha256(b"one").hexdigest(),
        first.etag,
    )
    object_store.put_bytes("k", b"two!")
    assert object_store.stat("k").etag != first.etag
    data, etag = object_store.get_versioned("k")
    assert data == b"two!" and etag == object_store.stat("k").etag


def test_large_file_streams_both_ways(object_store: ObjectStore, tmp_path):
    src = tmp_path / "big.bin"
    block = os.urandom(1 << 20)
    with open(src, "wb") as fh:  # 12 MiB: multipart on S3
        for i in range(12):
            fh.write(bytes([i]) + block[1:])
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    info = object_store.put_file("shards/big.bin", src)
    assert (info.size, info.sha256) == (12 << 20, digest)
    assert object_store.stat("shards/big.bin").sha256 == digest
    out = object_store.get_file("shards/big.bin", tmp_path / "out" / "big.bin", digest)
    assert hashlib.sha256(out.read_bytes()).hexdigest() == digest
    with object_store.open_read("shards/big.bin") as stream:
        first = stream.read(1000)
    assert first == src.read_bytes()[:1000]
    with pytest.raises(CorruptObject):
        object_store.get_file("shards/big.bin", tmp_path / "bad.bin", "0" * 64)
    assert not (tmp_path / "bad.bin").exists()


def test_content_addressed_blobs_are_verified(object_store: ObjectStore, tmp_path):
    sha = object_store.put_blob(b"crystal")
    assert sha == hashlib.sha256(b"crystal").hexdigest()
    assert object_store.put_blob(b"crystal") == sha
    assert object_store.has_blob(sha) and object_store.get_blob(sha) == b"crystal"
    many = [f"x{i}".encode() for i in range(20)] + [b"crystal"]
    assert object_store.put_blobs(many) == [hashlib.sha256(d).hexdigest() for d in many]
    assert all(object_store.get_blob(hashlib.sha256(d).hexdigest()) == d for d in many)
    path = tmp_path / "f.bin"
    path.write_bytes(b"file blob")
    assert object_store.get_blob(object_store.put_blob_file(path)) == b"file blob"
    object_store.put_bytes(blob_key(sha), b"tampered")
    with pytest.raises(CorruptObject):
        object_store.get_blob(sha)


def test_compare_and_swap_is_conditional(object_store: ObjectStore):
    created = object_store.compare_and_swap("refs/main", b"c1", None)
    with pytest.raises(PreconditionFailed):
        object_store.compare_and_swap("refs/main", b"c2", None)
    with pytest.raises(PreconditionFailed):
        object_store.compare_and_swap("refs/main", b"c2", "not-the-etag")
    with pytest.raises(PreconditionFailed):
        object_store.compare_and_swap("refs/absent", b"c2", created.etag)
    swapped = object_store.compare_and_swap("refs/main", b"c2", created.etag)
    assert object_store.get_versioned("refs/main") == (b"c2", swapped.etag)
    with pytest.raises(PreconditionFailed):
        object_store.compare_and_swap("refs/main", b"c3", created.etag)
    assert object_store.get_bytes("refs/main") == b"c2"


def test_concurrent_compare_and_swap_never_loses_an_increment(object_store: ObjectStore):
    object_store.compare_and_swap("counter", b"0", None)
    threads, per_thread = 4, 8

    def worker() -> None:
        done = 0
        while done < per_thread:
            data, etag = object_store.get_versioned("counter")
            try:
                object_store.compare_and_swap("counter", str(int(data) + 1).encode(), etag)
                done += 1
            except PreconditionFailed:
                continue

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert int(object_store.get_bytes("counter")) == threads * per_thread


@pytest.mark.parametrize(
    "key", ["", "/a", "a/", "a//b", "../x", "a/./b", "a/../b", ".autoperi/x", "a\\b", "a\nb"]
)
def test_invalid_keys_are_refused(object_store: ObjectStore, key):
    with pytest.raises(InvalidKey):
        object_store.put_bytes(key, b"x")
    with pytest.raises(InvalidKey):
        object_store.get_bytes(key)


def test_uri_names_where_a_client_reads_the_object(object_store: ObjectStore):
    from urllib.parse import unquote, urlsplit

    object_store.put_bytes("shards/x 1.pt", b"payload")
    uri = urlsplit(object_store.uri("shards/x 1.pt"))
    if uri.scheme == "file":
        assert Path(unquote(uri.path)).read_bytes() == b"payload"
    else:
        assert uri.scheme == "s3" and unquote(uri.path).endswith("shards/x 1.pt")
        assert uri.netloc == object_store.bucket
