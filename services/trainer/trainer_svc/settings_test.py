"""TrainerSettings.worker_resources_json: custom Ray resources every training worker reserves."""

import pytest
from autoperi.training.v1 import training_pb2 as pb
from pydantic import ValidationError

from trainer_svc._launcher import build_trainer
from trainer_svc._settings import TrainerSettings
from trainer_svc._spec import plan_run


def test_worker_resources_come_from_the_environment(monkeypatch):
    assert TrainerSettings().worker_resources() == {}
    monkeypatch.setenv("AUTOPERI_TRAINER_WORKER_RESOURCES_JSON", '{"train": 1, "ssd": 0.5}')
    assert TrainerSettings().worker_resources() == {"train": 1.0, "ssd": 0.5}


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("train", "not JSON"),
        ('["train"]', "a JSON object"),
        ('{"CPU": 2}', "set per run"),
        ('{"memory": 1}', "set per run"),
        ('{"train": -1}', "a number >= 0"),
        ('{"train": "1"}', "a number >= 0"),
        ('{"train": true}', "a number >= 0"),
    ],
)
def test_bad_worker_resources_are_refused_with_a_reason(text, reason):
    with pytest.raises(ValidationError, match=reason):
        TrainerSettings(worker_resources_json=text)


def test_each_worker_of_a_run_reserves_the_custom_resources(tmp_path):
    request = pb.StartRunRequest(resources=pb.Resources(num_workers=2, cpus_per_worker=1.5))
    plan = plan_run(request)
    trainer = build_trainer("r1", plan, {}, str(tmp_path), None, {"train": 1.0})
    scaling = trainer.scaling_config
    assert scaling.num_workers == 2
    assert scaling.resources_per_worker == {"train": 1.0, "CPU": 1.5}
    plain = build_trainer("r1", plan, {}, str(tmp_path), None).scaling_config
    assert plain.resources_per_worker == {"CPU": 1.5}
