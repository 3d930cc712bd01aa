"""The README's examples work as written.

- Every ```python block of README.md runs, in a fresh temporary directory with its own data
  directory, and checks its own result (each block holds `assert` statements). Training budgets
  are scaled down by REPLACEMENTS so the suite stays fast; nothing else is changed.
- Every `eqtrade ...` command shown in a ```bash / ```console / ```sh block of README.md and of
  the documentation pages (docs/*.md), and the first column of README.md's command table, parses
  with the real argument parser, so a renamed or removed option fails here. Nothing is skipped:
  the commands use concrete names (files and run directories need not exist, since only parsing
  is checked).
"""

from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
BLOCKS = re.findall(r"^```python\n(.*?)^```", README.read_text(encoding="utf-8"), flags=re.S | re.M)
# what the test changes in an example before running it: training budgets only
REPLACEMENTS = {"learn(20_000)": "learn(300)"}


def shell_commands(path: Path) -> list[tuple[int, str]]:
    """(line number, command) of every line of a shell block that runs `eqtrade`; continuation
    lines (ending in a backslash) are joined; a `$ ` prompt is dropped."""
    out, in_shell, pending, start = [], False, "", 0
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fence = line.strip()
        if fence.startswith("```"):
            in_shell = not in_shell and fence[3:].strip() in ("bash", "console", "sh", "shell")
            continue
        if not in_shell:
            continue
        text = line.strip()
        if pending:
            text, start = pending + " " + text, start
        else:
            start = n
        if text.endswith("\\"):
            pending = text[:-1].strip()
            continue
        pending = ""
        text = text.removeprefix("$ ")
        if text.startswith("eqtrade ") or text == "eqtrade":
            out.append((start, text))
    return out


def inline_commands(path: Path) -> list[tuple[int, str]]:
    """(line number, command) of each command-table row whose first cell is `eqtrade ...`."""
    return [(n, m.group(1)) for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
            if (m := re.match(r"\| `(eqtrade [^`]*)` \|", line))]


COMMANDS = ([(p, n, c) for p in [README, *DOCS] for n, c in shell_commands(p)]
            + [(README, n, c) for n, c in inline_commands(README)])


def test_readme_has_python_examples():
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("i", range(len(BLOCKS)))
def test_readme_example_asserts_its_result(i):
    tree = ast.parse(BLOCKS[i])
    assert any(isinstance(node, ast.Assert) for node in ast.walk(tree)), (
        f"README.md python block {i + 1} checks nothing: add an assert about what it printed or returned")


@pytest.mark.parametrize("i", range(len(BLOCKS)))
def test_readme_example_runs(i, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EQTRADE_DATA", str(tmp_path / "data"))
    code = BLOCKS[i]
    for old, new in REPLACEMENTS.items():
        code = code.replace(old, new)
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as `eqtrade train` does: small networks, and the suite shares the cores
    try:
        exec(compile(code, f"README.md python block {i + 1}", "exec"), {"__name__": f"readme_{i}"})
    finally:
        torch.set_num_threads(threads)
    assert capsys.readouterr().out.strip(), f"README.md python block {i + 1} printed nothing"


def test_docs_show_commands():
    readme = [c for p, _, c in COMMANDS if p == README]
    assert len(readme) >= 10 and len(COMMANDS) > len(readme)


@pytest.mark.parametrize("path,line,cmd", COMMANDS, ids=[f"{p.name}:{n}" for p, n, _ in COMMANDS])
def test_shown_command_parses(path, line, cmd):
    from eqtrade.cli import build_parser

    argv = shlex.split(cmd, comments=True)[1:]
    try:
        build_parser().parse_args(argv)
    except SystemExit as e:  # argparse exits on an unknown option or a missing argument (0: --help)
        if e.code == 0:
            return
        pytest.fail(f"{path.relative_to(ROOT)}:{line}: `{cmd}` does not parse (exit {e.code})")


def test_readme_links_exist():
    text = README.read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [link for link in links if "://" not in link]
    assert local, "README.md links to no documentation page"
    missing = [link for link in local if not (ROOT / link).exists()]
    assert not missing, f"README.md links to missing files: {missing}"
