"""Conditioned de novo generation by ion exchange on the shipped MP-20 checkpoint: every sample
honours its chemical system, required elements, atom range and space group, over several seeds;
requests no template can serve are refused naming why."""

from __future__ import annotations

from pathlib import Path

import pytest
from pymatgen.core import Element
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from autoperi_model import Generator

CHECKPOINT = Path(__file__).resolve().parents[3] / "checkpoints" / "mp_20_ion_exchange"


def _z(*symbols: str) -> tuple[int, ...]:
    return tuple(sorted(Element(s).Z for s in symbols))


@pytest.fixture(scope="module")
def gen() -> Generator:
    return Generator.from_checkpoint(CHECKPOINT, tasks=("dng",))


REQUESTS = {
    "chemical system": {"elements": _z("Li", "Fe", "P", "O")},
    "all of a system": {"elements": _z("Li", "Fe", "P", "O"), "required": _z("Li", "Fe", "P", "O")},
    "required Li, 8-12 atoms": {"required": _z("Li"), "atoms": (8, 12)},
    "space group 62 in Ba-Ti-O": {"elements": _z("Ba", "Ti", "O"), "group": 62},
    "everything": {"required": _z("Li"), "atoms": (8, 12), "group": 225},
}


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("name", list(REQUESTS))
def test_every_sample_honours_its_request(gen, name, seed):
    request = REQUESTS[name]
    group = request.get("group", 0)
    conditions = {"space_group_number": group} if group else {}
    elements, required = request.get("elements", ()), request.get("required", ())
    lo, hi = request.get("atoms", (1, 0))
    crystals = gen.generate_dng(
        12, seed=seed, elements=elements, atoms=(lo, hi), required=required, conditions=conditions
    )
    templates = gen.library.crystals.space_group
    for crystal in crystals:
        have = set(crystal.atomic_numbers.tolist())
        assert set(required) <= have and (not elements or have <= set(elements))
        assert lo <= len(crystal.atomic_numbers) <= (hi or 10**6)
        if group:
            assert int(templates[int(crystal.properties["template"])]) == group
            analyzer = SpacegroupAnalyzer(crystal.to_pymatgen(), symprec=0.1)
            assert analyzer.get_space_group_number() == group


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        ({"elements": _z("Cu", "S"), "group": 230}, "1-20 atoms is in space group 230"),
        ({"elements": _z("He")}, "can be ion-exchanged into elements He"),
        ({"elements": _z("Cu", "S"), "required": _z("Li")}, "required_elements Li are not among"),
        ({"required": _z("Li", "Na", "K"), "atoms": (1, 2)}, "required_elements has 3 elements"),
        ({"atoms": (30, 40)}, "no template has 30-40 atoms"),
    ],
    ids=["group", "helium", "not-a-subset", "too-many", "atoms"],
)  # fmt: skip
def test_requests_no_template_serves_are_refused_naming_why(gen, request_, reason):
    group = request_.get("group", 0)
    with pytest.raises(ValueError, match=reason):
        gen.generate_dng(
            2,
            elements=request_.get("elements", ()),
            required=request_.get("required", ()),
            atoms=request_.get("atoms", (1, 0)),
            conditions={"space_group_number": group} if group else {},
        )
