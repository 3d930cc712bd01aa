"""The `eqtrade` command through its installed entry point."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

EQTRADE = Path(sys.executable).parent / "eqtrade"


def run(*args, env=None, cwd=None):
    e = dict(os.environ, **(env or {}))
    return subprocess.run([str(EQTRADE), *args], capture_output=True, text=True, env=e, cwd=cwd, timeout=120)


def test_entry_point_is_installed_and_points_at_main():
    (ep,) = [e for e in entry_points(group="console_scripts") if e.name == "eqtrade"]
    assert ep.value == "eqtrade.cli:main"
    assert EQTRADE.exists()


@pytest.mark.parametrize("args", [[], ["fetch"], ["data"], ["data", "import"]])
def test_help_explains_every_command(args):
    r = run(*args, "--help")
    assert r.returncode == 0
    assert "usage: eqtrade" in r.stdout
    text = r.stdout.lower()
    if args == ["fetch"]:
        assert "--refresh" in text and "--data-dir" in text and "exit code is 1" in text
    if args == ["data", "import"]:
        assert "wide" in text and "long" in text and "ohlcv" in text


def test_data_list_and_show_bundled(tmp_path):
    r = run("data", "list", "--data-dir", str(tmp_path / "d"))
    assert r.returncode == 0, r.stderr
    assert "sp500-20" in r.stdout and "factor-etfs" in r.stdout and "8313" in r.stdout
    r = run("data", "show", "RRC")
    assert r.returncode == 0, r.stderr
    assert "1990-04-10" in r.stdout and "zero-days" in r.stdout


def test_import_then_list_via_env_data_dir(tmp_path):
    csv = tmp_path / "p.csv"
    csv.write_text("Date,X,Y\n2021-01-04,10,20\n2021-01-05,10.5,19\n2021-01-06,10.2,19.5\n")
    env = {"EQTRADE_DATA": str(tmp_path / "store")}
    r = run("data", "import", str(csv), "--name", "tiny", env=env)
    assert r.returncode == 0, r.stderr
    assert "imported" in r.stdout and "2 ticker(s)" in r.stdout
    r = run("data", "list", env=env)
    assert "tiny" in r.stdout and "imported" in r.stdout
    assert (tmp_path / "store" / "manifest.json").exists()
    r = run("data", "show", "tiny", env=env)
    assert r.returncode == 0 and "X" in r.stdout


def test_errors_are_one_clear_line_and_nonzero(tmp_path):
    r = run("data", "show", "NOSUCH", "--data-dir", str(tmp_path))
    assert r.returncode == 2
    assert "NOSUCH" in r.stderr and "Traceback" not in r.stderr
    r = run("data", "import", str(tmp_path / "missing.csv"), "--name", "x", "--data-dir", str(tmp_path))
    assert r.returncode == 2 and "no such file" in r.stderr


def test_default_data_dir_is_data_of_the_working_directory(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "EQTRADE_DATA"}
    r = subprocess.run([str(EQTRADE), "data", "list"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert r.returncode == 0 and f"data dir: {tmp_path / 'data'}" in r.stdout
