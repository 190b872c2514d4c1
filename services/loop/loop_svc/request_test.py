"""StartLoopRequest <-> LoopSpec: a spec survives the round trip, zeros mean the defaults, a
CSP target's formula units multiply its composition, a chemical space maps to the sampler's de
novo requests, and bad chemical spaces and yield plans are refused naming the field."""

import json

import pytest
from autoperi.loop.v1 import loop_pb2 as pb
from autoperi.sampler.v1 import sampler_pb2
from sampler_svc.client import composition_proto
from svc_kit import InvalidInput

from loop_svc import (
    ChemicalSpace,
    Evaluation,
    FineTune,
    LoopSpec,
    SelectionCriteria,
    request_to_spec,
    spec_to_request,
)
from loop_svc._clients import de_novo_request

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


def _de_novo_request(**space) -> pb.StartLoopRequest:
    fields = {
        "allowed_elements": ["Mg", "Rh", "N"], "required_elements": ["Rh"], "num_samples": 6,
        "min_atoms": 4, "max_atoms": 10, "steps": 20, "seed": 3,
    }  # fmt: skip
    return pb.StartLoopRequest(
        dataset={"dataset": "grow"}, base_checkpoint_id=BASE, num_rounds=2,
        chemical_space=pb.ChemicalSpace(**{**fields, **space}),
        evaluation=pb.EvaluationSpec(
            dataset={"dataset": "held"}, objective=pb.EVALUATION_OBJECTIVE_SUN_YIELD,
            yield_samples=64, stable_e_above_hull=0.0, confidence=0.9, max_csp_drop=0.0,
        ),
    )  # fmt: skip


def test_a_chemical_space_maps_to_de_novo_candidates_and_back():
    spec = request_to_spec(_de_novo_request())
    assert spec.targets == () and spec.samples_per_target == 6 and spec.sample_steps == 20
    assert spec.chemical_space == ChemicalSpace(("Mg", "Rh", "N"), ("Rh",), 4, 10)
    assert spec.seed == 3 and spec.evaluation.sun_yield and spec.evaluation.yield_samples == 64
    evaluation = spec.evaluation  # set optional numbers are kept, even where they are 0
    assert (evaluation.stable_e_above_hull, evaluation.confidence) == (0.0, 0.9)
    assert (evaluation.max_csp_drop, evaluation.bootstrap_resamples) == (0.0, 2000)
    assert request_to_spec(spec_to_request(spec)) == spec
    assert LoopSpec.from_json(json.loads(json.dumps(spec.to_json()))) == spec  # the journal's
    task = de_novo_request(spec.chemical_space, 6, 20, 3)  # what the sampler service gets
    assert task.WhichOneof("task") == "de_novo" and (task.num_samples, task.seed) == (6, 3)
    assert list(task.de_novo.elements) == ["Mg", "Rh", "N"]
    assert list(task.de_novo.required_elements) == ["Rh"] and task.num_steps == 20
    assert (task.de_novo.min_atoms, task.de_novo.max_atoms) == (4, 10)
    assert spec.chemical_space.atomic_numbers() == ((7, 12, 45), (45,))  # the in-process sampler's


def test_unset_yield_fields_take_the_defaults():
    request = _de_novo_request()
    request.evaluation.ClearField("stable_e_above_hull")
    request.evaluation.ClearField("confidence")
    evaluation = request_to_spec(request).evaluation
    assert (evaluation.stable_e_above_hull, evaluation.confidence) == (0.08, 0.95)


def _bad_requests():
    csp = sampler_pb2.SampleSpec(
        csp=sampler_pb2.CspTask(composition=composition_proto("SrTiO3")), num_samples=2
    )
    both = _de_novo_request()
    both.candidates.append(csp)
    neither = _de_novo_request()
    neither.ClearField("chemical_space")
    metric = _de_novo_request()
    metric.evaluation.objective = pb.EVALUATION_OBJECTIVE_METRIC
    confidence, nan = _de_novo_request(), _de_novo_request()
    confidence.evaluation.confidence = 1.0
    nan.evaluation.stable_e_above_hull = float("nan")
    unknown = _de_novo_request()
    unknown.evaluation.objective = 7
    return [
        (both, "candidates, chemical_space"),
        (neither, "candidates, chemical_space"),
        (_de_novo_request(num_samples=0), "chemical_space.num_samples"),
        (_de_novo_request(allowed_elements=["Mg", "Xq"]), "chemical_space.allowed_elements"),
        (_de_novo_request(allowed_elements=["Mg", "Mg"]), "chemical_space.allowed_elements"),
        (_de_novo_request(required_elements=["/etc"]), "chemical_space.required_elements"),
        (_de_novo_request(required_elements=["O"]), "chemical_space.required_elements"),
        (_de_novo_request(min_atoms=12), "chemical_space.max_atoms"),
        (_de_novo_request(required_elements=["Mg", "Rh", "N"], max_atoms=2), "chemical_space.max"),
        (metric, "evaluation.objective"),
        (unknown, "evaluation.objective"),
        (confidence, "evaluation.confidence"),
        (nan, "evaluation.stable_e_above_hull"),
    ]


@pytest.mark.parametrize(("request_", "field"), _bad_requests())
def test_a_bad_chemical_space_or_yield_plan_is_refused_naming_the_field(request_, field):
    with pytest.raises(InvalidInput) as caught:
        request_to_spec(request_)
    assert str(caught.value).startswith(field) and "/etc" not in str(caught.value)
