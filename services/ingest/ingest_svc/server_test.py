"""The ingest service over a real socket: ingest, dedup, limits, errors, versions."""

import csv
import io
import time
from collections import Counter

import grpc
import pytest
from autoperi.common.v1 import common_pb2
from autoperi.ingest.v1 import ingest_pb2
from autoperi_data import read_records
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pymatgen.core import Composition

from ingest_svc import SERVICE_NAME
from ingest_svc.client import csv_requests, header_request

GOOD_CIF = """data_NaCl
_cell_length_a 5.64
_cell_length_b 5.64
_cell_length_c 5.64
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
_symmetry_space_group_name_H-M 'P 1'
loop_
_atom_site_type_symbol
_atom_site_label
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
Na Na1 0 0 0
Cl Cl1 0.5 0.5 0.5
"""
BAD_CIF = GOOD_CIF.replace("data_NaCl", "data_bad").replace("Cl Cl1 0.5 0.5 0.5", "Cl Cl1 0.01 0 0")


def _ingest(stub, dataset, messages, **header):
    return stub.Ingest(iter([header_request(dataset, **header), *messages]), timeout=300)


def _cif(text, name="x.cif"):
    return ingest_pb2.IngestRequest(cif=ingest_pb2.CifChunk(file_name=name, text=text))


def _code(call):
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value.code(), info.value.details()


def test_health_reports_serving(ingest_server):
    server, _ = ingest_server
    with grpc.insecure_channel(server.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        reply = health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_mp20_rows_are_ingested_once_and_read_back(stub, mp20_rows):
    expected = Counter()
    for record in read_records(mp20_rows):
        expected[record.crystal.content_hash()] += 1
    first = _ingest(stub, "mp20-head", list(csv_requests(mp20_rows, 64)), create_dataset=True)
    assert (first.num_received, first.num_rejected) == (300, 0)
    assert first.num_accepted == len(expected) and first.commit_id
    assert first.num_duplicates == 300 - len(expected)
    again = _ingest(stub, "mp20-head", list(csv_requests(mp20_rows, 100)))
    assert (again.num_accepted, again.num_duplicates, again.commit_id) == (0, 300, "")
    ref = common_pb2.DatasetRef(dataset="mp20-head")
    read = list(stub.ReadCrystals(ingest_pb2.ReadCrystalsRequest(ref=ref, batch_size=100)))
    crystals = [c for batch in read for c in batch.crystals]
    assert sorted(c.content_hash for c in crystals) == sorted(expected)
    assert all(c.provenance.dataset_commit == first.commit_id for c in crystals)
    formulas = {r.key: r.crystal.formula for r in read_records(mp20_rows) if r.crystal}
    for crystal in crystals:  # the stored structure still has the composition of its row
        numbers = Counter(site.atomic_number for site in crystal.sites)
        formula = Composition({int(z): n for z, n in numbers.items()}).reduced_formula
        assert formula == Composition(formulas[crystal.id]).reduced_formula


def test_bad_records_get_reasons_and_good_ones_commit(stub):
    reply = _ingest(stub, "mixed", [_cif(GOOD_CIF + BAD_CIF, "two.cif")], create_dataset=True)
    assert (reply.num_accepted, reply.num_rejected) == (1, 1)
    [rejected] = reply.rejected_records
    assert rejected.record_key == "two.cif#bad" and rejected.code == "overlapping_atoms"


def test_abort_policy_and_dry_run_leave_nothing_behind(stub, ingest_server):
    _, versions = ingest_server
    abort = ingest_pb2.REJECT_POLICY_ABORT
    reply = _ingest(
        stub, "aborted", [_cif(GOOD_CIF + BAD_CIF)], create_dataset=True, reject_policy=abort
    )
    assert (reply.commit_id, reply.num_rejected) == ("", 1)
    dry = _ingest(stub, "dry-run", [_cif(GOOD_CIF)], create_dataset=True, dry_run=True)
    assert (dry.commit_id, dry.num_accepted) == ("", 1)
    assert not versions.repository_exists("aborted") and not versions.repository_exists("dry-run")


def test_malformed_and_oversized_requests_fail_cleanly(stub, ingest_server):
    _, versions = ingest_server
    code, details = _code(lambda: stub.Ingest(iter([_cif(GOOD_CIF)]), timeout=30))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "header" in details
    code, details = _code(lambda: _ingest(stub, "Bad Name", [_cif(GOOD_CIF)]))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "dataset name" in details
    code, _ = _code(lambda: _ingest(stub, "missing-set", [_cif(GOOD_CIF)]))
    assert code == grpc.StatusCode.NOT_FOUND
    many = _cif(GOOD_CIF * 2001)  # over the fixture's 2000-record limit
    code, details = _code(lambda: _ingest(stub, "too-big", [many], create_dataset=True))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "2000 records" in details
    assert not versions.repository_exists("too-big")


def test_branches_diff_merge_and_staging(stub):
    _ingest(stub, "versions", [_cif(GOOD_CIF)], create_dataset=True, message="first")
    kcl = GOOD_CIF.replace("Na", "K").replace("data_NaCl", "data_KCl").replace("5.64", "6.29")
    branch = _ingest(stub, "versions", [_cif(kcl)], branch="exp", create_branch_from="main")
    assert branch.num_accepted == 1
    diff = stub.Diff(ingest_pb2.DiffRequest(dataset="versions", from_ref="main", to_ref="exp"))
    assert (diff.num_added, diff.num_removed) == (1, 0)
    merge = stub.Merge(
        ingest_pb2.MergeRequest(dataset="versions", source_ref="exp", destination_branch="main")
    )
    assert merge.fast_forward and merge.num_added == 1
    staged = _ingest(stub, "versions", [_cif(GOOD_CIF.replace("Na", "Li"))], stage_only=True)
    assert staged.commit_id == "" and staged.num_accepted == 1
    info = stub.GetDataset(ingest_pb2.GetDatasetRequest(dataset="versions")).dataset
    assert [b.name for b in info.branches] == ["main", "exp"]
    assert info.branches[0].has_staged_changes and info.branches[0].num_crystals == 2
    commit = stub.Commit(ingest_pb2.CommitRequest(dataset="versions", branch="main")).commit
    assert commit.num_crystals == 3
    ref = common_pb2.DatasetRef(dataset="versions")
    log = stub.ListCommits(ingest_pb2.ListCommitsRequest(ref=ref, page_size=2))
    assert log.commits[0].commit_id == commit.commit_id and log.next_page_token
    names = [d.name for d in stub.ListDatasets(ingest_pb2.ListDatasetsRequest()).datasets]
    assert "versions" in names


def test_removal_in_the_same_stream(stub):
    first = _ingest(stub, "removals", [_cif(GOOD_CIF)], create_dataset=True)
    ref = common_pb2.DatasetRef(dataset="removals")
    [batch] = stub.ReadCrystals(ingest_pb2.ReadCrystalsRequest(ref=ref))
    removal = ingest_pb2.IngestRequest(
        removal=ingest_pb2.Removal(content_hashes=[batch.crystals[0].content_hash])
    )
    reply = _ingest(stub, "removals", [removal])
    assert reply.num_removed == 1 and reply.parent_commit_id == first.commit_id
    assert not list(stub.ReadCrystals(ingest_pb2.ReadCrystalsRequest(ref=ref)))


def test_proto_crystals_are_validated(stub):
    from xtal import Crystal
    from xtal.convert import to_proto

    good = Crystal.from_cif(GOOD_CIF, id="nacl")
    bad = to_proto(good.replace(id="nan"))
    bad.lattice.a.x = float("nan")
    batch = ingest_pb2.IngestRequest(crystals={"crystals": [to_proto(good), bad]})
    reply = _ingest(stub, "protos", [batch], create_dataset=True, source="sampler")
    assert (reply.num_accepted, reply.num_rejected) == (1, 1)
    assert reply.rejected_records[0].record_key == "nan"
    assert reply.rejected_records[0].code == "non_finite"


def test_csv_chunk_keys_count_rows_in_the_file(stub):
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerows([["material_id", "cif"], ["a", GOOD_CIF], ["b", BAD_CIF]])
    chunk = ingest_pb2.CsvChunk(file_name="f.csv", text=text.getvalue(), first_row=7)
    reply = _ingest(stub, "csv-keys", [ingest_pb2.IngestRequest(csv=chunk)], create_dataset=True)
    assert [r.record_key for r in reply.rejected_records] == ["f.csv:8"]


def test_a_missed_deadline_commits_nothing(stub, ingest_server, mp20_rows):
    """The deadline passes while the stream is still open (whatever the machine's speed)."""
    _, versions = ingest_server

    def late_stream():
        yield header_request("late", create_dataset=True)
        yield from csv_requests(mp20_rows, 50)
        time.sleep(1.5)

    code, _ = _code(lambda: stub.Ingest(late_stream(), timeout=0.5))
    assert code == grpc.StatusCode.DEADLINE_EXCEEDED
    time.sleep(0.5)  # a commit the server still made after the deadline would show now
    assert not versions.repository_exists("late")


def test_raw_bytes_that_are_not_utf8_reject_only_their_records(stub, ingest_server):
    _, versions = ingest_server
    latin1 = GOOD_CIF.replace("data_NaCl", "data_caf\xe9").encode("latin-1")
    kcl = GOOD_CIF.replace("Na", "K").replace("data_NaCl", "data_KCl").replace("5.64", "6.29")
    raw = b"\xef\xbb\xbf" + kcl.encode() + latin1  # a BOM, a good block, a latin-1 block
    chunk = ingest_pb2.CifChunk(file_name="mixed.cif", raw=raw)
    reply = _ingest(stub, "raw-cif", [ingest_pb2.IngestRequest(cif=chunk)], create_dataset=True)
    assert (reply.num_accepted, reply.num_rejected) == (1, 1)
    [rejected] = reply.rejected_records
    assert (rejected.record_key, rejected.code) == ("mixed.cif#caf\ufffd", "not_utf8")
    assert "line" in rejected.message
    sources = versions.tree("raw-cif", reply.commit_id, "sources/")
    assert [e.size for e in sources.values()] == [len(raw) - 3]  # as received, less the BOM
    rows = io.StringIO()
    csv.writer(rows).writerows([["material_id", "cif"], ["a", kcl], ["b\xe9", GOOD_CIF]])
    chunk = ingest_pb2.CsvChunk(file_name="r.csv", raw=rows.getvalue().encode("latin-1"))
    reply = _ingest(stub, "raw-csv", [ingest_pb2.IngestRequest(csv=chunk)], create_dataset=True)
    assert (reply.num_accepted, reply.num_duplicates, reply.num_rejected) == (1, 0, 1)
    assert [(r.record_key, r.code) for r in reply.rejected_records] == [("r.csv:1", "not_utf8")]


def test_a_chunk_with_both_text_and_raw_is_invalid(stub, ingest_server):
    _, versions = ingest_server
    chunk = ingest_pb2.CifChunk(file_name="both.cif", text=GOOD_CIF, raw=GOOD_CIF.encode())
    code, details = _code(
        lambda: _ingest(stub, "both", [ingest_pb2.IngestRequest(cif=chunk)], create_dataset=True)
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "both text and raw" in details
    assert not versions.repository_exists("both")
