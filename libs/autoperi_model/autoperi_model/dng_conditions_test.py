"""Conditioned de novo generation by the flow model (the shipped Perov-5 dng checkpoint, a few
steps): required elements are in every sample, other conditions it cannot honour are refused."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Element
from typer.testing import CliRunner

from autoperi_model import Generator, SampleSpec
from autoperi_model.cli import app

CHECKPOINT = Path(__file__).resolve().parents[3] / "checkpoints" / "perov_5_dng"


def _z(*symbols: str) -> tuple[int, ...]:
    return tuple(sorted(Element(s).Z for s in symbols))


@pytest.fixture(scope="module")
def gen() -> Generator:
    return Generator.from_checkpoint(CHECKPOINT, tasks=("dng",))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(
    ("elements", "required"),
    [
        ((), _z("Li")),
        (_z("Sr", "Ba", "Ti", "O"), _z("Ba", "Ti")),
        (_z("Cs", "Pb", "I"), _z("Cs", "Pb", "I")),
    ],
    ids=["Li", "in-a-system", "all-of-a-system"],
)  # fmt: skip
def test_every_sample_holds_the_required_elements(gen, elements, required, seed):
    crystals = gen.generate_dng(8, steps=3, seed=seed, elements=elements, required=required)
    for crystal in crystals:
        have = set(crystal.atomic_numbers.tolist())
        assert set(required) <= have
        assert not elements or have <= set(elements)


def test_required_elements_keep_the_rest_of_the_sample_its_own(gen):
    """The same seeds with and without a required element give the same atom counts; the
    required element is one atom's type given at t = 0, not a relabelling afterwards."""
    plain = gen.generate_dng(6, steps=3, seed=4)
    with_li = gen.generate_dng(6, steps=3, seed=4, required=_z("Li"))
    assert [len(c.atomic_numbers) for c in plain] == [len(c.atomic_numbers) for c in with_li]
    assert all(np.sum(c.atomic_numbers == 3) >= 1 for c in with_li)


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        (SampleSpec(0, conditions={"space_group_number": 62}), "not symmetry-conditioned"),
        (SampleSpec(0, None, _z("Ba", "O"), required_elements=_z("Li")), "Li are not among"),
        (SampleSpec(0, None, (), 1, 2, required_elements=_z("Li", "Na", "K")), "max_atoms is 2"),
    ],
    ids=["space-group", "not-a-subset", "too-many"],
)
def test_what_the_flow_cannot_honour_is_refused(gen, spec, reason):
    with pytest.raises(ValueError, match=reason):
        gen.sample([spec], steps=2)


def test_cli_dng_conditions(tmp_path):
    base = ["sample", "--checkpoint", str(CHECKPOINT), "--dng", "--n", "3", "--steps", "2"]
    result = CliRunner().invoke(
        app, [*base, "--out", str(tmp_path), "--elements", "Ba-Ti-O", "--required", "Ba"]
    )
    assert result.exit_code == 0, result.output
    samples = json.loads((tmp_path / "samples.json").read_text())["crystals"]
    assert all("Ba" in s["composition"] for s in samples)
    refused = CliRunner().invoke(app, [*base, "--out", str(tmp_path), "--space-group", "62"])
    text = re.sub(r"[\s│]+", " ", refused.output)  # the message, unwrapped from its box
    assert refused.exit_code != 0 and "not symmetry-conditioned" in text
