"""The scorer over a real socket with real CHGNet: values, errors, novelty, streams, limits."""

import json

import grpc
import numpy as np
import pytest
from autoperi.common.v1 import common_pb2
from autoperi.scorer.v1 import scorer_pb2
from autoperi_eval import composition_valid, structural_check
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer
from xtal import Crystal
from xtal.convert import from_proto, to_proto

from scorer_svc import SERVICE_NAME, ScoreOptions
from scorer_svc.client import score
from scorer_svc.conftest import REFERENCE_DATASET

VOIGT = ("xx", "yy", "zz", "yz", "xz", "xy")


def _request(crystals, **options):
    return scorer_pb2.ScoreRequest(
        crystals=[to_proto(c) for c in crystals], options=scorer_pb2.ScoreOptions(**options)
    )


def _code(call):
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value.code(), info.value.details()


RPCS = ("Score", "ScoreStream")  # every bad request is sent both ways


def _call(stub, rpc: str, request: scorer_pb2.ScoreRequest, timeout: float = 30):
    """The reply of Score, or the list of ScoreStream messages for the same crystals and
    options (a stream must fail, not end OK)."""
    if rpc == "ScoreStream":
        fields = {"crystals": request.crystals, "options": request.options}
        return list(stub.ScoreStream(scorer_pb2.ScoreStreamRequest(**fields), timeout=timeout))
    return stub.Score(request, timeout=timeout)


def test_health_reports_serving(scorer_server):
    with grpc.insecure_channel(scorer_server.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        reply = health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_info_names_the_potential_and_limits(stub):
    info = stub.GetScorerInfo(scorer_pb2.GetScorerInfoRequest(), timeout=5)
    assert (info.potential_name, info.max_batch_size, info.max_atoms) == ("CHGNet", 8, 100)
    assert info.potential_version.startswith("0.3.0")
    assert info.hull_configured and info.hull_source == "test-hull"


def test_hull_values_where_the_reference_spans_the_crystal(stub, real_crystals):
    larh, perovskite = real_crystals[4], real_crystals[0]
    assert larh.formula == "LaRh"
    reply = stub.Score(_request([larh, perovskite]), timeout=300)
    on, off = reply.results
    energy = on.energy_per_atom
    assert on.e_above_hull == pytest.approx(energy - (-6.9), abs=1e-9)
    assert on.formation_energy_per_atom == pytest.approx(energy - (-4.9 - 7.3) / 2, abs=1e-9)
    assert not off.HasField("e_above_hull") and not off.HasField("formation_energy_per_atom")


def test_scores_equal_direct_chgnet(stub, real_crystals, direct):
    request = _request(real_crystals, include_forces=True, include_stress=True)
    reply = stub.Score(request, timeout=300)
    assert [r.index for r in reply.results] == list(range(len(real_crystals)))
    for crystal, result, pred in zip(real_crystals, reply.results, direct, strict=True):
        assert not result.HasField("error"), result.error
        assert result.energy_per_atom == pytest.approx(float(pred["e"]), abs=1e-5)
        forces = np.array([[f.x, f.y, f.z] for f in result.forces])
        np.testing.assert_allclose(forces, pred["f"], atol=2e-4)  # float32 rounding, see _efs
        stress = np.array([getattr(result.stress, k) for k in VOIGT])
        s = pred["s"]
        voigt = [s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]]
        np.testing.assert_allclose(stress, voigt, atol=2e-3)
        assert result.content_hash == crystal.content_hash()
        assert result.crystal_id == crystal.id and not result.HasField("novel")


def test_validity_and_symmetry_follow_autoperi_eval_and_spglib(stub, real_crystals):
    reply = stub.Score(_request(real_crystals, symprec=0.01), timeout=300)
    for crystal, result in zip(real_crystals, reply.results, strict=True):
        check = structural_check(crystal.to_pymatgen())
        assert result.structure_valid == check.valid
        assert result.min_distance == pytest.approx(check.min_distance)
        assert result.composition_valid == composition_valid(crystal.atomic_numbers)
        analyzer = SpacegroupAnalyzer(crystal.to_pymatgen(), symprec=0.01)
        assert result.space_group_number == analyzer.get_space_group_number()
        assert result.space_group_symbol == analyzer.get_space_group_symbol()
    assert reply.timing.total.ToNanoseconds() >= reply.timing.compute.ToNanoseconds() > 0
    assert len({r.space_group_number for r in reply.results}) >= 3


def test_symmetry_backends_on_the_wire(stub, real_crystals):
    spglib = stub.Score(_request(real_crystals), timeout=300).results
    moyopy = _request(real_crystals, symmetry_backend=scorer_pb2.SYMMETRY_BACKEND_MOYOPY)
    moyopy = stub.Score(moyopy, timeout=300).results
    none = _request(real_crystals, symmetry_backend=scorer_pb2.SYMMETRY_BACKEND_NONE)
    none = stub.Score(none, timeout=300).results
    assert [r.space_group_number for r in moyopy] == [r.space_group_number for r in spglib]
    assert [r.space_group_symbol for r in moyopy] == [r.space_group_symbol for r in spglib]
    assert {(r.space_group_number, r.space_group_symbol) for r in none} == {(0, "")}
    assert [r.energy_per_atom for r in none] == [r.energy_per_atom for r in spglib]


def test_bad_crystals_fail_alone(stub, real_crystals, direct):
    good = real_crystals[0]
    big = Crystal.from_pymatgen(good.to_pymatgen().make_supercell([3, 3, 3]), id="big")
    squeezed = good.replace(lattice=good.lattice * 0.4, id="squeezed")
    lonely = Crystal(np.eye(3) * 9.0, [[0, 0, 0]], [1], id="lonely")  # no neighbour in 6 A
    reply = stub.Score(_request([good, big, squeezed, lonely, real_crystals[1]]), timeout=300)
    codes = [r.error.code for r in reply.results]
    assert codes == ["", "too_many_atoms", "small_volume", "potential_failed", ""]
    assert [r.crystal_id for r in reply.results][1:4] == ["big", "squeezed", "lonely"]
    assert reply.results[4].energy_per_atom == pytest.approx(float(direct[1]["e"]), abs=1e-5)
    assert not reply.results[1].HasField("energy_per_atom") and reply.results[1].error.message


@pytest.mark.parametrize("rpc", RPCS)
def test_nan_inf_and_huge_crystals_fail_alone(stub, real_crystals, direct, rpc):
    """NaN and infinite numbers, a 10^6 A cell, a sparse cell and a coordinate of 1e308 each get
    their own error, like the other bad crystals, before any neighbour list is built; the rest of
    the request is scored (one NaN crystal used to fail the whole request)."""
    good = real_crystals[0]
    nan_frac, far_frac = good.frac_coords.copy(), good.frac_coords.copy()
    inf_lattice = good.lattice.copy()
    nan_frac[0, 0], far_frac[0, 0], inf_lattice[1, 1] = np.nan, 1e308, np.inf
    bad = [
        good.replace(frac_coords=nan_frac, id="nan"),
        good.replace(lattice=inf_lattice, id="inf"),
        good.replace(lattice=np.eye(3) * 1e6, id="huge"),  # 10^6 A: too long
        good.replace(lattice=np.eye(3) * 900.0, id="sparse"),  # 1.5e8 A^3 per atom
        good.replace(frac_coords=far_frac, id="far"),
    ]
    reply = _call(stub, rpc, _request([good, *bad, real_crystals[1]]), timeout=300)
    messages = reply if rpc == "ScoreStream" else [reply]
    results = sorted((r for m in messages for r in m.results), key=lambda r: r.index)
    codes = [r.error.code for r in results]
    assert codes == ["", "non_finite", "non_finite", "out_of_range", "out_of_range",
                     "out_of_range", ""]  # fmt: skip
    assert [r.crystal_id for r in results[1:6]] == ["nan", "inf", "huge", "sparse", "far"]
    assert "1e+06 A long" in results[3].error.message
    assert "volume per atom" in results[4].error.message
    assert "coordinate out of range" in results[5].error.message
    for result, pred in ((results[0], direct[0]), (results[6], direct[1])):
        assert result.energy_per_atom == pytest.approx(float(pred["e"]), abs=1e-5)


@pytest.mark.parametrize(
    "case",
    [
        "empty", "no_sites", "element_zero", "no_lattice", "fmax", "steps", "novelty_name",
        "symmetry_backend",
    ],
)  # fmt: skip
@pytest.mark.parametrize("rpc", RPCS)
def test_malformed_requests_are_invalid_argument(stub, real_crystals, case, rpc):
    message = to_proto(real_crystals[0])
    request = scorer_pb2.ScoreRequest(crystals=[message])
    if case == "empty":
        del request.crystals[:]
    elif case == "no_sites":
        del request.crystals[0].sites[:]
    elif case == "element_zero":
        request.crystals[0].sites[0].atomic_number = 0
    elif case == "no_lattice":
        request.crystals[0].ClearField("lattice")
    elif case == "fmax":
        request.options.fmax = -1.0
    elif case == "steps":
        request.options.relax, request.options.max_relax_steps = True, 51
    elif case == "symmetry_backend":
        request.options.symmetry_backend = 9  # proto3 enums are open: the server must refuse it
    else:
        request.options.novelty_reference.CopyFrom(common_pb2.DatasetRef(ref="main"))
    code, details = _code(lambda: _call(stub, rpc, request))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details
    assert "Traceback" not in details


@pytest.mark.parametrize("rpc", RPCS)
def test_too_many_crystals_are_resource_exhausted(stub, real_crystals, rpc):
    code, details = _code(lambda: _call(stub, rpc, _request(real_crystals[:1] * 9)))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "limit of 8" in details


def test_novelty_against_an_ingested_commit(stub, real_crystals, reference_store):
    _, commit = reference_store
    known = real_crystals[0]
    doubled = Crystal.from_pymatgen(known.to_pymatgen().make_supercell([1, 1, 2]), id="x2")
    assert doubled.content_hash() != known.content_hash()  # found by StructureMatcher
    ref = common_pb2.DatasetRef(dataset=REFERENCE_DATASET, ref="main")
    crystals = [known, doubled, real_crystals[3], real_crystals[5]]
    reply = stub.Score(_request(crystals, novelty_reference=ref), timeout=300)
    assert reply.novelty_reference_commit == commit
    assert [r.novel for r in reply.results] == [False, False, True, True]
    assert reply.results[0].matched_content_hash == known.content_hash()
    assert reply.results[1].matched_content_hash == known.content_hash()
    by_commit = common_pb2.DatasetRef(dataset=REFERENCE_DATASET, ref=commit)
    again = stub.Score(_request(crystals[:1], novelty_reference=by_commit), timeout=300)
    assert again.results[0].novel is False


@pytest.mark.parametrize("rpc", RPCS)
def test_novelty_against_a_missing_dataset_is_not_found(stub, real_crystals, rpc):
    ref = common_pb2.DatasetRef(dataset="no-such-set")
    request = _request(real_crystals[:1], novelty_reference=ref)
    code, details = _code(lambda: _call(stub, rpc, request))
    assert code == grpc.StatusCode.NOT_FOUND and "no-such-set" in details


# (case id, DatasetRef fields from (store root, data dir), the field the reason names)
NOVELTY_PATHS = [
    ("dataset-absolute", lambda st, dd: {"dataset": "/etc"}, "novelty_reference.dataset"),
    ("dataset-relative", lambda st, dd: {"dataset": "../x"}, "is not a dataset name"),
    ("dataset-file-uri", lambda st, dd: {"dataset": "file:///etc/passwd"}, "not a dataset name"),
    ("dataset-store-root", lambda st, dd: {"dataset": str(st)}, "novelty_reference.dataset"),
    ("dataset-data-dir", lambda st, dd: {"dataset": str(dd / "mp_20")}, "not a dataset name"),
    (
        "dataset-traversal",
        lambda st, dd: {"dataset": f"{REFERENCE_DATASET}/../../etc"},
        "novelty_reference.dataset",
    ),
    (
        "ref-traversal",
        lambda st, dd: {"dataset": REFERENCE_DATASET, "ref": "../../../etc/passwd"},
        "novelty_reference.ref",
    ),
    (
        "ref-absolute",
        lambda st, dd: {"dataset": REFERENCE_DATASET, "ref": "/etc"},
        "is not a branch, tag or commit id",
    ),
    (
        "ref-file-uri",
        lambda st, dd: {"dataset": REFERENCE_DATASET, "ref": f"file://{st}"},
        "novelty_reference.ref",
    ),
    (
        "ref-below-a-branch",
        lambda st, dd: {"dataset": REFERENCE_DATASET, "ref": "main/../../x"},
        "novelty_reference.ref",
    ),
]


@pytest.mark.parametrize(
    ("fields", "reason"), [c[1:] for c in NOVELTY_PATHS], ids=[c[0] for c in NOVELTY_PATHS]
)
@pytest.mark.parametrize("rpc", RPCS)
def test_a_novelty_reference_naming_a_path_is_invalid_argument_and_never_echoed(
    stub, real_crystals, reference_store, data_dir, tmp_path, fields, reason, rpc
):
    store = reference_store[0].objects.root
    ref = common_pb2.DatasetRef(**fields(store, data_dir))
    request = _request(real_crystals[:1], novelty_reference=ref)
    code, details = _code(lambda: _call(stub, rpc, request))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and reason in details, details
    for host_path in (str(store), str(store.parent), str(data_dir), str(tmp_path), "/etc"):
        assert host_path not in details, details
    assert "Traceback" not in details and "file:" not in details


def test_stream_relaxes_and_returns_every_index(stub, real_crystals, direct):
    crystals = real_crystals[:5]
    request = scorer_pb2.ScoreStreamRequest(
        crystals=[to_proto(c) for c in crystals],
        options=scorer_pb2.ScoreOptions(
            relax=True, max_relax_steps=3, fmax=1e-4, include_relaxed_crystal=True
        ),
    )
    messages = list(stub.ScoreStream(request, timeout=600))
    assert len(messages) >= 3  # relax_batch_size 2: results arrive in parts
    assert messages[-1].num_done == messages[-1].num_total == 5
    results = sorted((r for m in messages for r in m.results), key=lambda r: r.index)
    assert [r.index for r in results] == [0, 1, 2, 3, 4]
    for result, crystal, pred in zip(results, crystals, direct[:5], strict=True):
        assert result.unrelaxed_energy_per_atom == pytest.approx(float(pred["e"]), abs=1e-5)
        assert result.relax_steps == 3 and not result.relax_converged
        relaxed = from_proto(result.relaxed_crystal)
        assert relaxed.num_atoms == crystal.num_atoms and relaxed.content_hash()
        assert result.energy_per_atom < result.unrelaxed_energy_per_atom + 1e-3


def test_client_helper_returns_scores_in_order(scorer_server, real_crystals, direct):
    # every other crystal as its crystal.v1 message, which the helper sends as it is
    mixed = [to_proto(c) if i % 2 else c for i, c in enumerate(real_crystals)]
    results = score(scorer_server.address, mixed, ScoreOptions(), chunk_size=3)
    assert [r.index for r in results] == list(range(len(real_crystals)))
    energies = [r.energy_per_atom for r in results]
    np.testing.assert_allclose(energies, [float(p["e"]) for p in direct], atol=1e-5)
    assert [r.content_hash for r in results] == [c.content_hash() for c in real_crystals]
    bad = to_proto(real_crystals[0])
    bad.sites[0].atomic_number = 0
    code, details = _code(lambda: score(scorer_server.address, [bad], timeout_s=30))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "crystal 0" in details


def test_cli_scores_cif_and_samples_json_on_the_server(scorer_server, real_crystals, tmp_path):
    import typer
    from typer.testing import CliRunner

    from scorer_svc import cli

    cif = tmp_path / "one.cif"
    cif.write_text(real_crystals[0].to_cif())
    entries = [
        {"id": "s0", "lattice": c.lattice.tolist(), "frac_coords": c.frac_coords.tolist(),
         "atomic_numbers": c.atomic_numbers.tolist()}
        for c in real_crystals[1:3]
    ]  # fmt: skip
    samples = tmp_path / "samples.json"
    samples.write_text(json.dumps({"checkpoint": "x", "crystals": entries}))
    app = typer.Typer()
    app.command()(cli.score)
    out = tmp_path / "scores.json"
    args = [str(cif), str(samples), "--address", scorer_server.address, "--json", str(out)]
    refused = CliRunner().invoke(app, [*args, "--symmetry", "spg"])
    assert refused.exit_code == 2 and "unknown symmetry backend 'spg'" in refused.output
    run = CliRunner().invoke(app, [*args, "--symmetry", "none"])
    assert run.exit_code == 0, run.output
    rows = json.loads(out.read_text())["results"]
    assert len(rows) == 3 and all(np.isfinite(r["energy_per_atom"]) for r in rows)
    assert {r["space_group_number"] for r in rows} == {0}
    for row, crystal in zip(rows, real_crystals[:3], strict=True):  # unrelaxed: the input
        lattice = np.array(row["lattice"])  # up to a rotation: CIF stores cell parameters only
        assert np.allclose(lattice @ lattice.T, crystal.lattice @ crystal.lattice.T, atol=1e-4)
        assert row["atomic_numbers"] == crystal.atomic_numbers.tolist()


@pytest.mark.parametrize("rpc", RPCS)
def test_deadline_is_honoured(stub, real_crystals, rpc):
    crystals = (real_crystals * 2)[:8]  # four worker calls of two 50-step relaxations
    request = _request(crystals, relax=True, max_relax_steps=50, fmax=1e-6)
    code, _ = _code(lambda: _call(stub, rpc, request, timeout=1.0))
    assert code == grpc.StatusCode.DEADLINE_EXCEEDED
