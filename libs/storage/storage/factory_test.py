"""Opening stores from URIs; credentials stay out of URIs and messages."""

import pytest

from storage import (
    LocalObjectStore,
    LocalVersionStore,
    StorageError,
    open_object_store,
    open_version_store,
    redact_uri,
)
from storage.conftest import MOTO_BUCKET, MOTO_CREDENTIALS, s3_uri


def test_file_uris_and_plain_paths_open_the_local_store(tmp_path):
    store = open_object_store(f"file://{tmp_path}/objs")
    assert isinstance(store, LocalObjectStore) and store.durable
    store.put_bytes("k", b"v")
    assert open_object_store(str(tmp_path / "objs")).get_bytes("k") == b"v"
    assert not open_object_store(f"file://{tmp_path}/objs?durable=false").durable
    versions = open_version_store(f"file://{tmp_path}/objs")
    assert isinstance(versions, LocalVersionStore)
    versions.create_repository("data")
    assert open_version_store(str(tmp_path / "objs")).list_repositories() == ["data"]


def test_s3_uri_reads_credentials_from_the_environment(moto_endpoint, monkeypatch):
    for name, value in MOTO_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    store = open_object_store(s3_uri(moto_endpoint, "factory"))
    store.put_bytes("k", b"v")
    assert store.get_bytes("k") == b"v"
    assert store.describe().startswith(f"s3://{MOTO_BUCKET}/factory/")
    versions = open_version_store(s3_uri(moto_endpoint, "factory-versions"))
    versions.create_repository("data")
    assert versions.list_repositories() == ["data"]


@pytest.mark.parametrize(
    "uri",
    [
        "s3://AKIAEXAMPLE:sup3rs3cret@bucket/prefix",
        "s3://bucket/prefix?endpoint=h:1&secret_key=sup3rs3cret",
        "lakefs://?endpoint=http://h:8000&access_key_id=AKIAEXAMPLE",
    ],
)
def test_credentials_in_uris_are_refused_without_echoing_them(uri):
    with pytest.raises(StorageError) as info:
        open_version_store(uri)
    assert "sup3rs3cret" not in str(info.value) and "AKIAEXAMPLE" not in str(info.value)


def test_redact_uri_drops_user_info_and_query():
    assert redact_uri("s3://key:secret@bucket/p?endpoint=h:1") == "s3://bucket/p"


def test_unknown_scheme_and_missing_lakefs_endpoint(monkeypatch):
    with pytest.raises(StorageError, match="unsupported"):
        open_object_store("ftp://host/x")
    monkeypatch.delenv("LAKEFS_ENDPOINT", raising=False)
    with pytest.raises(StorageError, match="LAKEFS_ENDPOINT"):
        open_version_store("lakefs://")
