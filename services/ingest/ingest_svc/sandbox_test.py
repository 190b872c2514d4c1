"""The parser sandbox: a parser that dies or hangs costs only its records, with a reason; it
runs with an empty environment in a scratch directory, without network or child processes
(seen by `ingest_svc.sandbox_probe` run through the real sandbox launcher)."""

import os
import socket

import pytest

from ingest_svc._batches import cif_batches, csv_batches
from ingest_svc._isolation import network_namespace_available
from ingest_svc._sandbox import ParserPool, SandboxLimits, _Worker
from ingest_svc.server_test import BAD_CIF, GOOD_CIF

SECRETS = {
    "AWS_SECRET_ACCESS_KEY": "aws-secret-0451",
    "LAKEFS_SECRET_ACCESS_KEY": "lakefs-secret-0451",
    "AUTOPERI_INGEST_STORAGE_URI": "s3://bucket/ingest?secret=0451",
}
ALLOWED_ENV = {"PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "LC_CTYPE", "PYTHONPATH"} | {
    "PYTHONNOUSERSITE", "PYTHONDONTWRITEBYTECODE", "PYTHONSAFEPATH", "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
}  # fmt: skip


@pytest.fixture(scope="module")
def listener():
    """A TCP socket listening on 127.0.0.1 that the probe tries to reach."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.setblocking(False)
        yield server


@pytest.fixture(scope="module")
def probed(listener):
    """(the probe's report, its scratch directory, whether it still exists after the worker
    ended), the probe started with secrets in the parent's environment."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in SECRETS.items():
            patch.setenv(name, value)
        worker = _Worker(SandboxLimits(workers=1), module="ingest_svc.sandbox_probe")
    try:
        report = worker.call({"port": listener.getsockname()[1]}, timeout_s=60)
    finally:
        worker.kill()
    return report, worker.scratch, os.path.exists(worker.scratch)


def _accepted_nothing(listener) -> bool:
    try:
        listener.accept()[0].close()
    except BlockingIOError:
        return True
    return False


def test_the_parser_sees_none_of_the_services_environment(probed):
    report, scratch, _ = probed
    environ = report["environ"]
    assert set(environ) <= ALLOWED_ENV, set(environ) - ALLOWED_ENV
    assert not [n for n in environ if n.startswith(("AWS_", "LAKEFS_", "AUTOPERI_"))]
    assert not [v for v in environ.values() if "0451" in v]
    assert environ["HOME"] == environ["TMPDIR"] == scratch


def test_the_parser_runs_in_a_scratch_directory_removed_when_it_ends(probed):
    report, scratch, exists_after = probed
    assert report["cwd"] == report["tmp"] == scratch
    assert os.path.basename(scratch).startswith("ingest-parser-")
    assert not exists_after


def test_python_code_in_the_parser_can_neither_connect_nor_start_processes(probed, listener):
    report, _, _ = probed
    refused = "PermissionError: the parser sandbox refuses"
    assert report["python_connect"].startswith(f"{refused} socket.__new__")
    assert report["spawn"].startswith(f"{refused} subprocess.Popen")
    assert _accepted_nothing(listener)


@pytest.mark.skipif(not network_namespace_available(), reason="no unprivileged namespaces")
def test_c_code_in_the_parser_cannot_connect_either(probed, listener):
    report, _, _ = probed
    assert report["c_connect"] == "connect: Network is unreachable"
    assert _accepted_nothing(listener)


def _parse(pool, text):
    return [e for request, n in cif_batches("t.cif", text, 10, "") for e in pool.parse(request, n)]


def test_good_and_bad_records_come_back_in_order():
    pool = ParserPool(SandboxLimits(workers=1))
    try:
        entries = _parse(pool, GOOD_CIF + BAD_CIF + GOOD_CIF)
    finally:
        pool.close()
    assert [e["index"] for e in entries] == [0, 1, 2]
    assert [e["error"] is None for e in entries] == [True, False, True]
    assert entries[1]["error"].startswith("overlapping_atoms: ")
    assert entries[0]["hash"] == entries[2]["hash"]


def test_a_worker_that_dies_gives_parser_crash_per_record():
    pool = ParserPool(SandboxLimits(memory_bytes=48 << 20, workers=1))  # cannot even import
    try:
        entries = _parse(pool, GOOD_CIF + BAD_CIF)
    finally:
        pool.close()
    assert [e["index"] for e in entries] == [0, 1]
    assert all(e["error"].startswith("parser_crash: ") for e in entries)


def test_a_worker_past_its_time_limit_gives_timeout():
    pool = ParserPool(SandboxLimits(timeout_s=0.001, timeout_per_record_s=0.0, workers=1))
    try:
        entries = _parse(pool, GOOD_CIF + GOOD_CIF.replace("data_NaCl", "data_two"))
    finally:
        pool.close()
    assert [e["error"].split(":")[0] for e in entries] == ["timeout", "timeout"]


def test_csv_batches_keep_file_wide_row_indices():
    text = "id,cif\n" + "".join(f'{i},"{GOOD_CIF}"\n' for i in range(5))
    batches = csv_batches("f.csv", text, first_row=10, size=2, source="")
    assert [(request["first_index"], n) for request, n in batches] == [(10, 2), (12, 2), (14, 1)]
    assert all(request["text"].startswith("id,cif\n") for request, _ in batches)
