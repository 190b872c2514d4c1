"""`bench_conditioning`: shares per condition and per check, refusals recorded, a report
without machine paths."""

from __future__ import annotations

import json
from pathlib import Path

from autoperi_model import (
    ION_EXCHANGE_CONDITIONS,
    Condition,
    ConditioningPlan,
    bench_conditioning,
    write_conditioning,
)

ROOT = Path(__file__).resolve().parents[3]


def test_shares_per_condition_and_a_report_without_machine_paths(tmp_path):
    checkpoint = ROOT / "checkpoints" / "mp_20_ion_exchange"
    plan = ConditioningPlan(n=10, checks={"small": lambda c: len(c.atomic_numbers) <= 12})
    result = bench_conditioning(checkpoint, ION_EXCHANGE_CONDITIONS, plan)
    rows = {row["condition"]: row for row in result["conditions"]}
    assert rows["unconditional"]["generated"] == 10 and result["checks"] == [
        "struct_valid",
        "small",
    ]
    assert rows["space group 62"]["shares"] == {"space_group": 100.0, "all": 100.0}
    assert rows["Li-Fe-P-O"]["unconditional_shares"]["chemical_system"] == 0.0
    assert rows["8-12 atoms"]["checks"]["small"] == 100.0
    assert rows["Cu-S"]["unconditional_checks"]["small"] is None  # no free sample is Cu-S
    path = write_conditioning(result, tmp_path, "ion_exchange")
    text = path.read_text() + (tmp_path / "ion_exchange.json").read_text()
    assert str(ROOT) not in text and result["checkpoint"] == "checkpoints/mp_20_ion_exchange"
    assert json.loads((tmp_path / "ion_exchange.json").read_text())["conditions"][0]["failed"] == 0


def test_a_refused_condition_is_recorded_with_its_reason(tmp_path):
    checkpoint = ROOT / "checkpoints" / "perov_5_dng"
    plan = ConditioningPlan(n=2, steps=2)
    result = bench_conditioning(checkpoint, [Condition("sg 62", space_group=62)], plan)
    refused = result["conditions"][1]
    assert refused["condition"] == "sg 62" and "not symmetry-conditioned" in refused["refused"]
    assert "refused: " in write_conditioning(result, tmp_path, "flow").read_text()
