"""`autoperi stack` with security on (issue 22): TLS with client certificates and bearer tokens
on all six services (the sampler's TLS is served by its relay in front of Serve's plaintext
proxy). One call with the token reaches every service; calls without it are refused
UNAUTHENTICATED; health needs no token; a plaintext client cannot reach a TLS port; the trainer
reaches the featurestore with the stack's client variables. Certificates are made by the test."""

import os
import signal
import subprocess
import sys

import grpc
import pytest
from autoperi.common.v1 import common_pb2
from autoperi.featurestore.v1 import featurestore_pb2 as fs
from autoperi.featurestore.v1 import featurestore_pb2_grpc
from autoperi.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from autoperi.loop.v1 import loop_pb2, loop_pb2_grpc
from autoperi.scorer.v1 import scorer_pb2, scorer_pb2_grpc
from autoperi.training.v1 import training_pb2, training_pb2_grpc
from autoperi_app.stack import StackConfig, stack_roles
from grpc_health.v1 import health_pb2, health_pb2_grpc
from ingest_svc.server_test import GOOD_CIF as NACL_CIF
from stack_process import wait_for_table
from svc_kit import ClientSecurity, open_channel
from svc_kit.testing import TlsFiles, make_tls_files

pytestmark = [pytest.mark.slow, pytest.mark.e2e]
BASE_PORT = 50361  # clear of the default 50061.. and of stack_test's 50261..
DATASET = "secured"


def _stack_env(tls: TlsFiles) -> dict[str, str]:
    """Server settings of every service (AUTOPERI_<SERVICE>_*) and the client settings the
    stack's probes and the trainer's featurestore calls use (AUTOPERI_TLS_*, _AUTH_TOKEN)."""
    env = {
        "AUTOPERI_TLS_CA_FILE": str(tls.ca_cert),
        "AUTOPERI_TLS_CLIENT_CERT_FILE": str(tls.client_cert),
        "AUTOPERI_TLS_CLIENT_KEY_FILE": str(tls.client_key),
        "AUTOPERI_AUTH_TOKEN": tls.token,
    }
    for service in stack_roles():
        prefix = f"AUTOPERI_{service.upper()}_"
        env[f"{prefix}AUTH_TOKENS_FILE"] = str(tls.tokens)
        env[f"{prefix}TLS_CERT_FILE"] = str(tls.server_cert)
        env[f"{prefix}TLS_KEY_FILE"] = str(tls.server_key)
        env[f"{prefix}TLS_CLIENT_CA_FILE"] = str(tls.ca_cert)
    return env


def test_secured_stack_answers_with_a_token_and_refuses_without(tmp_path):
    tls = make_tls_files(tmp_path / "tls")
    config = StackConfig(storage_uri=str(tmp_path / "data"), base_port=BASE_PORT)
    command = [sys.executable, "-m", "autoperi_app.main", "stack", "--base-port", str(BASE_PORT)]
    command += ["--storage-uri", config.storage_uri, "--log-dir", str(tmp_path / "logs")]
    out = (tmp_path / "stack.out").open("wb")
    env = {**os.environ, **_stack_env(tls)}
    process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        wait_for_table(tmp_path / "stack.out", process, timeout_s=420.0)
        security = ClientSecurity(
            tls_ca_file=tls.ca_cert,
            tls_client_cert_file=tls.client_cert,
            tls_client_key_file=tls.client_key,
            auth_token=tls.token,
        )
        _one_call_to_every_service(config, security)
        _refusals(config, security)
        _trainer_asks_the_featurestore(config, security)
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=120)
    assert code == 0, (tmp_path / "stack.out").read_text()[-2000:]


def _one_call_to_every_service(config: StackConfig, security: ClientSecurity) -> None:
    from sampler_svc.client import csp_spec, sample, sample_stream, sampler_info

    with open_channel(config.address("ingest"), security) as channel:
        reply = _ingest(ingest_pb2_grpc.IngestServiceStub(channel))
        assert reply.num_accepted == 1, reply
        datasets = ingest_pb2_grpc.IngestServiceStub(channel).ListDatasets(
            ingest_pb2.ListDatasetsRequest(), timeout=30
        )
        assert DATASET in [d.name for d in datasets.datasets]
    with open_channel(config.address("featurestore"), security) as channel:
        reply = featurestore_pb2_grpc.FeatureStoreServiceStub(channel).GetFeatures(
            _lookup(), timeout=60
        )
        assert reply.feature_set.dataset_commit
    with open_channel(config.address("scorer"), security) as channel:
        stub = scorer_pb2_grpc.ScorerServiceStub(channel)
        assert stub.GetScorerInfo(scorer_pb2.GetScorerInfoRequest(), timeout=30).potential_name
    info = sampler_info(config.address("sampler"), security=security)
    assert info.checkpoint_id
    crystals = sample(config.address("sampler"), "SrTiO3", 2, steps=2, seed=0, security=security)
    assert [c.formula for c in crystals] == ["SrTiO3", "SrTiO3"]
    spec = csp_spec("SrTiO3", 3, steps=2, seed=0)
    streamed = list(sample_stream(config.address("sampler"), spec, security=security))
    assert sum(len(chunk) for chunk in streamed) == 3
    with open_channel(config.address("trainer"), security) as channel:
        stub = training_pb2_grpc.TrainingServiceStub(channel)
        assert list(stub.ListRuns(training_pb2.ListRunsRequest(), timeout=30).runs) == []
    with open_channel(config.address("loop"), security) as channel:
        stub = loop_pb2_grpc.LoopServiceStub(channel)
        assert list(stub.ListLoops(loop_pb2.ListLoopsRequest(), timeout=30).loops) == []


def _refusals(config: StackConfig, security: ClientSecurity) -> None:
    """Without a token every service refuses; health answers; plaintext fails on TLS ports."""
    from sampler_svc.client import sampler_info

    no_token = security.model_copy(update={"auth_token": None})
    with open_channel(config.address("ingest"), no_token) as channel:
        stub = ingest_pb2_grpc.IngestServiceStub(channel)
        code = _code(lambda: stub.ListDatasets(ingest_pb2.ListDatasetsRequest(), timeout=30))
        assert code == grpc.StatusCode.UNAUTHENTICATED
        assert _code(lambda: _ingest(stub)) == grpc.StatusCode.UNAUTHENTICATED
        health = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=10
        )
        assert health.status == health_pb2.HealthCheckResponse.SERVING
    with open_channel(config.address("featurestore"), no_token) as channel:
        stub = featurestore_pb2_grpc.FeatureStoreServiceStub(channel)
        assert (
            _code(lambda: stub.GetFeatures(_lookup(), timeout=30))
            == grpc.StatusCode.UNAUTHENTICATED
        )
    with open_channel(config.address("scorer"), no_token) as channel:
        stub = scorer_pb2_grpc.ScorerServiceStub(channel)
        code = _code(lambda: stub.GetScorerInfo(scorer_pb2.GetScorerInfoRequest(), timeout=30))
        assert code == grpc.StatusCode.UNAUTHENTICATED
    address = config.address("sampler")
    assert _code(lambda: sampler_info(address, security=no_token)) == (
        grpc.StatusCode.UNAUTHENTICATED
    )
    with open_channel(config.address("loop"), no_token) as channel:
        stub = loop_pb2_grpc.LoopServiceStub(channel)
        code = _code(lambda: stub.ListLoops(loop_pb2.ListLoopsRequest(), timeout=30))
        assert code == grpc.StatusCode.UNAUTHENTICATED
    plaintext = security.without_tls()  # a plaintext client on a TLS port
    assert _code(lambda: sampler_info(address, security=plaintext)) == grpc.StatusCode.UNAVAILABLE
    with open_channel(config.address("trainer"), plaintext) as channel:
        stub = training_pb2_grpc.TrainingServiceStub(channel)
        code = _code(lambda: stub.ListRuns(training_pb2.ListRunsRequest(), timeout=30))
        assert code == grpc.StatusCode.UNAVAILABLE


def _trainer_asks_the_featurestore(config: StackConfig, security: ClientSecurity) -> None:
    """A run of an unknown dataset is refused with the featurestore's answer (NOT_FOUND), which
    the trainer got over TLS with its client certificate and token (a refused call would be
    UNAVAILABLE); nothing is queued."""
    from trainer_svc.testing import tiny_config_yaml

    request = training_pb2.StartRunRequest(
        config_yaml=tiny_config_yaml(), train_dataset=common_pb2.DatasetRef(dataset="no-such-set")
    )
    with open_channel(config.address("trainer"), security) as channel:
        stub = training_pb2_grpc.TrainingServiceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.StartRun(request, timeout=60)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value.details()
    assert "unknown dataset 'no-such-set'" in info.value.details()


def _ingest(stub: ingest_pb2_grpc.IngestServiceStub) -> ingest_pb2.IngestResponse:
    """The one-crystal dataset, ingested (a client stream)."""
    header = ingest_pb2.IngestHeader(dataset=DATASET, create_dataset=True, message="secured")
    cif = ingest_pb2.CifChunk(file_name="nacl.cif", raw=NACL_CIF.encode())
    requests = [ingest_pb2.IngestRequest(header=header), ingest_pb2.IngestRequest(cif=cif)]
    return stub.Ingest(iter(requests), timeout=300)


def _lookup() -> fs.GetFeaturesRequest:
    """What the featurestore has for the dataset's main branch (builds nothing)."""
    return fs.GetFeaturesRequest(
        dataset=common_pb2.DatasetRef(dataset=DATASET, ref="main"),
        featurizer=fs.FeaturizerConfig(name="periodic", params_json="{}"),
        kinds=[fs.FEATURE_KIND_TENSOR_SHARDS],
        lookup_only=True,
    )


def _code(call) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value.code()
