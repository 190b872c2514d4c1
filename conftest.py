"""Shared pytest fixtures for the whole repository."""

import contextlib
import os
import sys
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


def _start_ray():
    """One local Ray instance for the whole test run (Ray Train and Ray Serve tests share it).

    Four logical CPUs on a 2-core machine: a Serve replica and a 2-worker TorchTrainer can be
    placed together; Ray only counts reservations, the OS shares the cores.
    """
    import ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(
        num_cpus=4,
        object_store_memory=300 * 1024 * 1024,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
    )


def pytest_collection_finish(session):
    """Start Ray before the first test when any selected test needs it.

    Ray starts its raylet by fork with a Python `preexec_fn`. Forked from a process whose other
    threads (gRPC channels, torch pools left by earlier tests) hold the allocator's or the import
    lock, the child can hang before exec, and `ray.init` fails with "node timed out during
    startup". Right after collection the test process has no such threads yet.
    """
    if session.config.option.collectonly:
        return
    if any("ray_session" in item.fixturenames for item in session.items):
        with contextlib.suppress(ImportError):  # without Ray, the fixture skips its tests
            _start_ray()


def pytest_sessionfinish(session):
    """Stop Serve and Ray if the run started them."""
    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return
    from ray import serve

    with contextlib.suppress(Exception):  # Serve may never have started
        serve.shutdown()
    ray.shutdown()


@pytest.fixture(scope="session")
def ray_session():
    """The run's Ray (started at the end of collection; see `pytest_collection_finish`)."""
    ray = pytest.importorskip("ray")
    if not ray.is_initialized():
        _start_ray()
    return ray
