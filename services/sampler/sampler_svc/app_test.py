"""`sampler_svc.app:build`, the Serve application builder of Serve config files."""

from pathlib import Path

import pytest
from ray.serve._private.api import call_user_app_builder_with_args_if_necessary
from ray.serve.schema import ServeApplicationSchema

from sampler_svc.app import build

CHECKPOINT = Path(__file__).resolve().parents[3] / "checkpoints" / "perov_5_csp"


def test_serve_builds_the_sampler_app_from_config_args():
    config = ServeApplicationSchema(
        import_path="sampler_svc.app:build",
        args={"checkpoint": str(CHECKPOINT), "num_replicas": 2, "max_atoms": 40},
    )
    # What Serve does with an application entry of a config file: import, call with `args`.
    app = call_user_app_builder_with_args_if_necessary(build, config.args)
    deployment = app._bound_deployment
    assert deployment.name == "SamplerDeployment"
    assert deployment.num_replicas == 2
    assert deployment.init_args == (str(CHECKPOINT), 1, 40, None)


def test_unknown_args_are_refused_by_name():
    with pytest.raises(ValueError, match="checkpointt"):
        build({"checkpointt": str(CHECKPOINT)})


def test_tokens_reach_the_replicas_and_tls_is_refused(tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text("t0k3n\n")
    app = build({"checkpoint": str(CHECKPOINT), "auth_tokens_file": str(tokens)})
    assert app._bound_deployment.init_args[3] == str(tokens.resolve())
    pem = {"tls_cert_file": str(tokens), "tls_key_file": str(tokens)}  # refused before reading
    with pytest.raises(ValueError, match="terminate TLS in front of the proxy"):
        build({"checkpoint": str(CHECKPOINT), **pem})
