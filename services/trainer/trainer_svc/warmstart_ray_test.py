"""With Ray: a run warm-started from a stored checkpoint that does not fit its model fails with a
reason the client may read: the checkpoint id, no weight name and no host path."""

import grpc
import pytest
import yaml
from autoperi.training.v1 import training_pb2 as pb
from autoperi_model import Config
from storage import LocalObjectStore

from trainer_svc import publish_checkpoint
from trainer_svc.client import stream, stub, wait
from trainer_svc.testing import (
    model_checkpoint,
    perov_subset,
    serving_trainer,
    shard_refs,
    tiny_config_yaml,
)


@pytest.mark.slow
def test_a_misfit_warm_start_fails_naming_no_weight_and_no_path(ray_session, data_dir, tmp_path):
    objects = LocalObjectStore(tmp_path / "store", durable=False)
    refs = shard_refs(objects, perov_subset(data_dir, 32), tmp_path / "cache")
    config_yaml = tiny_config_yaml(max_steps=2)
    other = Config.model_validate(yaml.safe_load(config_yaml)).updated(
        backbone={"layers": 3}
    )  # extra weights
    weights = model_checkpoint(other, tmp_path / "other")
    checkpoint_id, _ = publish_checkpoint(objects, tmp_path / "other", "seed", 0, 0, {})
    request = pb.StartRunRequest(
        config_yaml=config_yaml,
        train_shards=refs,
        resume_from_checkpoint_id=checkpoint_id,
        max_failures=0,
    )
    with (
        serving_trainer(objects, tmp_path) as server,
        grpc.insecure_channel(server.address) as channel,
    ):
        run_id = stub(channel).StartRun(request, timeout=60).run.run_id
        run = wait(channel, run_id, timeout=300)
        events = list(stream(channel, run_id, follow=False, timeout=30))
    messages = [run.error.message]
    messages += [e.state_change.message for e in events if e.HasField("state_change")]
    assert run.state == pb.RUN_STATE_FAILED, run
    assert f"checkpoint {checkpoint_id} does not fit" in run.error.message, run.error.message
    for message in messages:
        assert not any(name in message for name in weights), message
        assert str(tmp_path) not in message and "/tmp" not in message, message
