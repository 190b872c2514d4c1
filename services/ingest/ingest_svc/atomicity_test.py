"""All-or-nothing ingests over a real socket: the reply carries the commit id, or nothing moved.

The stub's channel keeps gRPC's default 4 MiB receive limit, as most clients do.
"""

import time

import grpc
import pytest
from autoperi.common.v1 import common_pb2
from autoperi.ingest.v1 import ingest_pb2

from ingest_svc._model import MAX_KEY_CHARS, MAX_REASON_CHARS, REQUEST_ID_KEY
from ingest_svc.client import csv_requests, header_request
from ingest_svc.server_test import BAD_CIF, GOOD_CIF

HUGE = 900 << 10  # characters of an oversized value: under the readers' 1 MiB line cap
LINE_CAP_PLUS = 6 << 20  # a line over the cap (and over gRPC's default message limit)
KCL_CIF = GOOD_CIF.replace("Na", "K").replace("data_NaCl", "data_KCl").replace("5.64", "6.29")


def _ingest(stub, dataset, messages, timeout=300, **header):
    return stub.Ingest(iter([header_request(dataset, **header), *messages]), timeout=timeout)


def _cif(text, name="x.cif"):
    return ingest_pb2.IngestRequest(cif=ingest_pb2.CifChunk(file_name=name, text=text))


def _log(stub, dataset):
    request = ingest_pb2.ListCommitsRequest(ref=common_pb2.DatasetRef(dataset=dataset))
    return [c.commit_id for c in stub.ListCommits(request).commits]


def test_an_oversized_value_is_cut_and_the_reply_carries_the_commit(stub, ingest_server):
    _, versions = ingest_server
    huge = "5.64" + "x" * HUGE
    bad = GOOD_CIF.replace("data_NaCl", "data_huge").replace("5.64\n", f"{huge}\n", 1)
    reply = _ingest(stub, "huge-value", [_cif(GOOD_CIF + bad)], create_dataset=True)
    assert (reply.num_accepted, reply.num_rejected) == (1, 1)
    assert reply.commit_id == versions.head("huge-value", "main")
    [rejected] = reply.rejected_records
    assert (rejected.record_key, rejected.code) == ("x.cif#huge", "cif_parse")
    assert len(rejected.message) <= MAX_REASON_CHARS  # the value cut, by the reader or here
    assert reply.ByteSize() < 1024


def test_a_line_over_the_readers_cap_is_refused_and_the_reply_carries_the_commit(
    stub, ingest_server
):
    _, versions = ingest_server
    bad = GOOD_CIF.replace("data_NaCl", "data_huge").replace(
        "5.64\n", f"5.64{'x' * LINE_CAP_PLUS}\n", 1
    )
    reply = _ingest(stub, "huge-line", [_cif(GOOD_CIF + bad)], create_dataset=True)
    assert (reply.num_accepted, reply.num_rejected) == (1, 1)
    assert reply.commit_id == versions.head("huge-line", "main")
    [rejected] = reply.rejected_records
    assert rejected.code == "too_large" and len(rejected.message) <= MAX_REASON_CHARS
    assert reply.ByteSize() < 1024


def test_long_record_keys_are_bounded(stub):
    name = "n" * HUGE
    bad = BAD_CIF.replace("data_bad", f"data_{name}")
    reply = _ingest(stub, "huge-key", [_cif(bad), _cif(GOOD_CIF)], create_dataset=True)
    [rejected] = reply.rejected_records
    assert (
        len(rejected.record_key) <= MAX_KEY_CHARS and f"[{HUGE + 6} chars]" in rejected.record_key
    )
    assert rejected.code == "overlapping_atoms" and reply.commit_id


def test_an_ingest_whose_records_are_all_rejected_creates_no_dataset(stub, ingest_server):
    _, versions = ingest_server
    reply = _ingest(stub, "all-rejected", [_cif(BAD_CIF)], create_dataset=True)
    assert (reply.commit_id, reply.parent_commit_id, reply.num_rejected) == ("", "", 1)
    assert [r.code for r in reply.rejected_records] == ["overlapping_atoms"]
    assert not versions.repository_exists("all-rejected")
    with pytest.raises(grpc.RpcError) as info:
        stub.GetDataset(ingest_pb2.GetDatasetRequest(dataset="all-rejected"))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    first = _ingest(stub, "all-rejected", [_cif(GOOD_CIF)], create_dataset=True)
    again = _ingest(stub, "all-rejected", [_cif(BAD_CIF), _cif(GOOD_CIF)])
    assert (again.commit_id, again.num_duplicates, again.num_rejected) == ("", 1, 1)
    assert _log(stub, "all-rejected")[0] == first.commit_id


@pytest.mark.parametrize("timeout", [0.5, 1.0])
def test_a_deadline_passing_while_records_are_parsed_commits_nothing(
    stub, ingest_server, mp20_rows, timeout
):
    """The stream ends at once and parsing 300 rows takes about the deadline: either the reply
    names the head, or the call fails and no commit shows, even after the parsers are done."""
    _, versions = ingest_server
    dataset = f"parse-deadline-{int(timeout * 10)}"
    messages = list(csv_requests(mp20_rows, 50))
    try:
        reply = _ingest(stub, dataset, messages, timeout=timeout, create_dataset=True)
    except grpc.RpcError as exc:
        assert exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        time.sleep(1.5)  # a commit the server still made after the deadline would show now
        assert not versions.repository_exists(dataset)
        return
    assert reply.commit_id == versions.head(dataset, "main")


def test_a_retry_with_the_same_request_id_returns_the_first_commit(stub, ingest_server):
    """A client whose reply was lost (a deadline, a server that died after the commit) retries
    with the same request id and gets the first commit back, not a second one."""
    _, versions = ingest_server
    first = _ingest(stub, "retried", [_cif(GOOD_CIF)], create_dataset=True, request_id="req-1")
    other = _ingest(stub, "retried", [_cif(KCL_CIF)], request_id="req-2")
    retry = _ingest(stub, "retried", [_cif(GOOD_CIF)], create_dataset=True, request_id="req-1")
    assert retry.commit_id == first.commit_id and retry.num_accepted == 1
    assert retry.parent_commit_id == first.parent_commit_id
    assert _log(stub, "retried")[:2] == [other.commit_id, first.commit_id]
    info = versions.get_commit("retried", first.commit_id)
    assert info.metadata[REQUEST_ID_KEY] == "req-1"
    fresh = _ingest(stub, "retried", [_cif(GOOD_CIF)], request_id="req-3")
    assert (fresh.commit_id, fresh.num_duplicates) == ("", 1)
