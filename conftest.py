"""Shared pytest fixtures for the whole repository."""

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
