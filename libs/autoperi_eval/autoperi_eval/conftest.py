"""Fixtures of the evaluation tests: a session cache directory and loaded reference splits."""

from pathlib import Path

import pytest

from autoperi_eval import Cache
from autoperi_eval._io import load_reference, parse_reference
from autoperi_eval._structs import SampleRecord


@pytest.fixture(scope="session")
def eval_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache directory shared by the tests of one session (fresh each session)."""
    return tmp_path_factory.mktemp("autoperi_eval_cache")


@pytest.fixture(scope="session")
def load_split(data_dir: Path, eval_cache_dir: Path):
    """load_split("perov_5:test[:100]") -> list[SampleRecord], parsed once per session."""
    loaded: dict[str, list[SampleRecord]] = {}

    def load(spec: str) -> list[SampleRecord]:
        if spec not in loaded:
            cache = Cache(eval_cache_dir)
            loaded[spec] = load_reference(parse_reference(spec), data_dir, cache)
            cache.close()
        return loaded[spec]

    return load
