"""`autoperi stack` as a user runs it: one process starts Ray and all five services, every one
answers, a sampled crystal is scored across two services, and SIGTERM stops them all."""

import signal
import subprocess
import sys

import pytest
from autoperi_app.stack import StackConfig, health_ready, stack_roles
from stack_process import wait_for_table

pytestmark = [pytest.mark.slow, pytest.mark.e2e]
BASE_PORT = 50261  # clear of the default 50061.. so a developer's running stack is untouched


def test_stack_serves_every_service_and_stops_on_sigterm(tmp_path):
    config = StackConfig(storage_uri=str(tmp_path / "data"), base_port=BASE_PORT)
    command = [sys.executable, "-m", "autoperi_app.main", "stack", "--base-port", str(BASE_PORT)]
    command += ["--storage-uri", config.storage_uri, "--log-dir", str(tmp_path / "logs")]
    out = (tmp_path / "stack.out").open("wb")
    process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_table(tmp_path / "stack.out", process, timeout_s=300.0)
        roles = stack_roles()
        assert all((r.ready or health_ready)(config.address(n)) for n, r in roles.items())
        from sampler_svc.client import sample
        from scorer_svc.client import score

        crystals = sample(config.address("sampler"), "SrTiO3", n=2, steps=5, seed=0)
        assert [c.formula for c in crystals] == ["SrTiO3", "SrTiO3"]
        results = score(config.address("scorer"), crystals)
        assert all(r.energy_per_atom is not None and r.energy_per_atom < 0 for r in results)
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=120)
    assert code == 0, (tmp_path / "stack.out").read_text()[-2000:]
    logs = tmp_path / "logs"
    assert sorted(p.stem for p in logs.glob("*.log")) == sorted(stack_roles())
