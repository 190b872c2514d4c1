"""Shared pytest fixtures for the whole repository."""

import contextlib
import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The benchmark datasets directory (AUTOPERI_DATA_DIR); skips with a reason when unset."""
    value = os.environ.get("AUTOPERI_DATA_DIR", "")
    if not value or not Path(value).is_dir():
        pytest.skip(
            "AUTOPERI_DATA_DIR is not set to an existing directory; the dataset tests need it"
        )
    return Path(value)


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray instance for the whole test run (Ray Train and Ray Serve tests share it).

    Four logical CPUs on a 2-core machine: a Serve replica and a 2-worker TorchTrainer can be
    placed together; Ray only counts reservations, the OS shares the cores.
    """
    ray = pytest.importorskip("ray")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(
        num_cpus=4,
        object_store_memory=300 * 1024 * 1024,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
    )
    try:
        yield ray
    finally:
        from ray import serve

        with contextlib.suppress(Exception):  # Serve may never have started
            serve.shutdown()
        ray.shutdown()
