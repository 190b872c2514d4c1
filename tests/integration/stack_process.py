"""Helpers for tests that run `autoperi stack` as a subprocess."""

import time


def wait_for_table(path, process, timeout_s: float) -> None:
    """Return once the stack's address table is in its output file `path`; AssertionError with
    the output's tail if `process` exits first or `timeout_s` passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = path.read_text(errors="replace")
        if "AutoPeri stack" in text:
            return
        assert process.poll() is None, text[-2000:]
        time.sleep(1.0)
    raise AssertionError(f"stack not up after {timeout_s} s: {path.read_text()[-2000:]}")
