"""Every Python example in README.md runs as written (issue 12 item 9), in a fresh directory.
Training budgets in the examples are scaled down (20_000 steps -> 300) so the suite stays fast;
nothing else is changed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_python_examples():
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("i", range(len(BLOCKS)))
def test_readme_example_runs(i, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EQTRADE_DATA", str(tmp_path / "data"))
    code = BLOCKS[i].replace("learn(20_000)", "learn(300)")
    exec(compile(code, f"README.md python block {i + 1}", "exec"), {"__name__": f"readme_{i}"})
