"""The bad-input corpus: every file is rejected with its specific reason, and nothing crashes.

tests/data/bad_inputs/expected.json maps each file to either a file-level error (read_records
raises CrystalError) or the expected outcome of each record (code None = accepted).
"""

import json
import subprocess
import sys
from pathlib import Path

import autoperi_data
import pytest
import xtal

CORPUS = Path(__file__).resolve().parents[1] / "data" / "bad_inputs"
EXPECTED = json.loads((CORPUS / "expected.json").read_text())


def outcome(path: Path) -> dict:
    """What reading `path` gives, shaped like a manifest entry (file_error or records)."""
    try:
        records = list(autoperi_data.read_records(path))
    except xtal.CrystalError as exc:
        return {"file_error": {"code": exc.code, "message": str(exc)}}
    return {"records": [{"code": r.code, "message": r.error or ""} for r in records]}


def assert_matches(got: dict, expected: dict) -> None:
    if "file_error" in expected:
        assert "file_error" in got, got
        assert got["file_error"]["code"] == expected["file_error"]["code"], got
        assert expected["file_error"]["message"] in got["file_error"]["message"], got
        return
    assert "records" in got, got
    assert [r["code"] for r in got["records"]] == [r["code"] for r in expected["records"]], got
    for mine, wanted in zip(got["records"], expected["records"], strict=True):
        assert wanted.get("message", "") in mine["message"], got


def test_corpus_is_complete_and_small():
    files = {p.name for p in CORPUS.iterdir() if p.name != "expected.json"}
    assert files == set(EXPECTED)
    assert len(files) >= 30
    assert all((CORPUS / name).stat().st_size < 1_000_000 for name in files)
    codes = {
        entry["file_error"]["code"] if "file_error" in entry else record["code"]
        for entry in EXPECTED.values()
        for record in entry.get("records", [{}])
    }
    assert codes - {None} <= set(xtal.ERROR_CODES)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_file_gives_its_specific_reason(name):
    assert_matches(outcome(CORPUS / name), EXPECTED[name])


def test_all_files_in_one_subprocess_without_a_crash():
    """A native crash (segfault, abort) would kill the interpreter: read everything in a child."""
    script = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from xtal_bad_inputs_test import CORPUS, EXPECTED, outcome\n"
        "print(json.dumps({name: outcome(CORPUS / name) for name in sorted(EXPECTED)}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-2000:]
    got = json.loads(result.stdout.strip().splitlines()[-1])
    for name, expected in EXPECTED.items():
        assert_matches(got[name], expected)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_file_in_its_own_subprocess(name):
    script = (
        "import sys, autoperi_data, xtal\n"
        "try:\n    print(sum(1 for _ in autoperi_data.read_records(sys.argv[1])))\n"
        "except xtal.CrystalError as exc:\n    print(exc.code)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(CORPUS / name)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
