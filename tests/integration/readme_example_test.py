"""The README's Python example runs as written: the test reads it from README.md (the first
```python block under "## Python API"), so the two cannot drift apart."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def readme_example() -> str:
    """The code of the README's Python API example."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None, "README.md has no python block under '## Python API'"
    return match.group(1)


def test_the_readme_python_example_runs(data_dir, monkeypatch):
    monkeypatch.chdir(ROOT)  # the example names checkpoints relative to the repository
    namespace: dict = {"__name__": "readme_example"}
    exec(compile(readme_example(), "README.md", "exec"), namespace)
    crystals, scores, report = namespace["crystals"], namespace["scores"], namespace["report"]
    assert [c.formula for c in crystals] == ["SrTiO3", "SrTiO3", "BaZrO3", "BaZrO3"]
    assert all(s.error is None and s.energy_per_atom < 0 for s in scores)
    assert 0.3 <= report.metrics["match"]["k1_gated"]["match_rate"] <= 1.0
    assert all(set(c.atomic_numbers.tolist()) <= {8, 22, 38} for c in namespace["novel"])
