"""StartLoopRequest <-> LoopSpec: a spec survives the round trip, zeros mean the defaults, and
a CSP target's formula units multiply its composition."""

from autoperi.loop.v1 import loop_pb2 as pb
from autoperi.sampler.v1 import sampler_pb2
from sampler_svc.client import composition_proto

from loop_svc import (
    Evaluation,
    FineTune,
    LoopSpec,
    SelectionCriteria,
    request_to_spec,
    spec_to_request,
)

BASE = "ab" * 32


def test_a_spec_survives_the_round_trip():
    spec = LoopSpec(
        name="x", dataset="grow", base_checkpoint=BASE, targets=("SrTiO3", "Ba2Zr2O6"),
        evaluation=Evaluation("held", "c" * 64, 8, 10, "rmse", False, 0.01), branch="dev",
        num_rounds=3, samples_per_target=5, sample_steps=20, seed=7,
        selection=SelectionCriteria(True, False, 0.2, 9, 0.3),
        fine_tune=FineTune(6, 12, 3e-4, 0.9, 2, "model: {}\n"), sample_in_process=True,
    )  # fmt: skip
    assert request_to_spec(spec_to_request(spec)) == spec


def test_zeros_mean_the_defaults_and_formula_units_multiply():
    task = sampler_pb2.CspTask(composition=composition_proto("SrTiO3"), num_formula_units=2)
    request = pb.StartLoopRequest(
        dataset={"dataset": "grow"}, base_checkpoint_id=BASE, num_rounds=1,
        candidates=[sampler_pb2.SampleSpec(csp=task, num_samples=2)],
        evaluation=pb.EvaluationSpec(dataset={"dataset": "held"}),
    )  # fmt: skip
    spec = request_to_spec(request)
    assert spec.targets == ("Sr2Ti2O6",) and spec.branch == "main" and spec.name == "loop"
    assert spec.fine_tune == FineTune()
    assert spec.evaluation == Evaluation("held", "main", 50, 0, "match_rate", True, 0.0)
    assert spec.selection == SelectionCriteria(False, False, None, 0, 0.0)
