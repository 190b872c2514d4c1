"""The parser sandbox: a parser that dies or hangs costs only its records, with a reason."""

from ingest_svc._batches import cif_batches, csv_batches
from ingest_svc._sandbox import ParserPool, SandboxLimits
from ingest_svc.server_test import BAD_CIF, GOOD_CIF


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
