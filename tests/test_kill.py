"""kill -9 during `eqtrade train` (a real subprocess, killed at random points, several times): the
last checkpoint stays readable, --resume continues, and the finished run's metrics have every
evaluation exactly once (issue 12)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

CFG = ('[run]\nsteps = 400\n[env]\nepisode_length = 40\nsplit = ["2012-01-01", "2014-12-31"]\n[agent]\nfamily = "plain"\n'
       'learning_starts = 50\nbatch_size = 16\neval_every = 50\ncheckpoint_every = 20\n')
# (a 3-year train split, not the 15-year one: each evaluation also rolls the train split out)
KILLS = 2  # runs killed before the one that finishes (the second a resumed one)


def _start(args, log):
    return subprocess.Popen([sys.executable, "-m", "eqtrade.cli", "train", *args, "--no-progress"],
                            stdout=log, stderr=subprocess.STDOUT)


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return None


def test_train_survives_kill_minus_9_and_resumes(tmp_path):
    from eqtrade.agents import Agent

    cfg = tmp_path / "c.toml"
    cfg.write_text(CFG)
    out = tmp_path / "run"
    ckpt = out / "checkpoint.pt"
    rng = np.random.default_rng(0)
    kills, resumed = 0, 0
    log = open(tmp_path / "log.txt", "w")
    for attempt in range(KILLS):
        started = ckpt.exists()
        args = ["--out", str(out), "--resume"] if started else ["--config", str(cfg), "--out", str(out)]
        p = _start(args, log)
        # once this process has written a checkpoint of its own (it is training: past its imports),
        # kill it at a random moment: inside a step, an evaluation or a checkpoint write (one every 20 steps)
        before, deadline = _mtime(ckpt), time.time() + 120
        while p.poll() is None and _mtime(ckpt) == before:
            assert time.time() < deadline, (tmp_path / "log.txt").read_text()[-2000:]
            time.sleep(0.05)
        time.sleep(float(rng.uniform(0.0, 1.5)))
        assert p.poll() is None, (tmp_path / "log.txt").read_text()[-2000:]  # killed before it could finish
        p.send_signal(signal.SIGKILL)
        p.wait()
        kills += 1
        resumed += started
        Agent.load(ckpt)  # readable after every kill
    p = _start(["--out", str(out), "--resume"], log)
    assert p.wait(timeout=300) == 0, (tmp_path / "log.txt").read_text()[-2000:]
    log.close()
    assert kills >= 2, kills
    agent = Agent.load(out / "checkpoint.pt")
    assert agent.step == 400
    m = pd.read_csv(out / "metrics.csv")
    evals = m.dropna(subset=["eval_return"])["step"].tolist()
    assert evals == list(range(50, 401, 50)), evals  # each evaluation once, in order
    print(f"kill -9 during train: {kills} kills ({resumed} of them of a resumed run), finished at step {agent.step}")


FETCH_SCRIPT = r"""
import sys, time
sys.path.insert(0, {tests!r})
import yfinance
import eqtrade.data.yahoo as y
from conftest import FakeYahoo

fake = FakeYahoo()
def slow(*a, **k):
    time.sleep(0.15)  # a network call takes a while: kills land inside fetches and writes
    return fake.download(*a, **k)
yfinance.download = slow
y.network_ok = lambda *a, **k: True
from eqtrade.cli import main
# one ticker a request (--batch-size 1): many requests, so that kills land inside fetches and writes
sys.exit(main(["fetch", "--tickers", *{tickers!r}, "--start", "2000-01-01", "--end", {end!r}, "--data-dir", {data!r},
               "--no-progress", "--batch-size", "1", *{extra!r}]))
"""


def _written_since(data: Path, t: float) -> bool:
    """Whether the fetch has written a file (a ticker's parquet, the manifest) into `data` since t."""
    return data.exists() and any(f.stat().st_mtime >= t for f in data.rglob("*") if f.is_file())


@pytest.mark.slow  # 23 s; make test-all (the default suite's budget: the train kill -9 test stays)
def test_fetch_survives_kill_minus_9(tmp_path):
    from eqtrade.data import DataStore, load_bundled

    tickers = list(load_bundled("sp500-20").columns)
    data = tmp_path / "cache"
    rng = np.random.default_rng(1)
    kills = 0
    for attempt, end in enumerate(["2010-12-31"] * 2 + ["2015-12-31"] * 3):
        script = tmp_path / "f.py"
        # --refresh: every attempt downloads and replaces every file (atomic replacement under a kill)
        script.write_text(FETCH_SCRIPT.format(tests=str(Path(__file__).parent), tickers=tickers, end=end,
                                              data=str(data), extra=["--refresh"] if attempt else []))
        started = time.time()
        p = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # kill once this attempt has written its first file (no fixed sleep for the imports), at a
        # random moment of the next ~4 requests: inside a download, a write or a manifest update
        deadline = time.time() + 60
        while p.poll() is None and time.time() < deadline and not _written_since(data, started):
            time.sleep(0.02)
        time.sleep(float(rng.uniform(0.0, 1.2)))
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            p.wait()
            kills += 1
        store = DataStore(data)
        if (data / "manifest.json").exists():  # whatever landed is whole and verified
            for t in store.read_manifest()["tickers"]:
                assert len(store.get_ticker(t)) > 0
    assert kills >= 3, kills
    script.write_text(FETCH_SCRIPT.format(tests=str(Path(__file__).parent), tickers=tickers, end="2015-12-31",
                                          data=str(data), extra=[]))
    assert subprocess.run([sys.executable, str(script)], capture_output=True, timeout=300).returncode == 0
    store = DataStore(data)
    for t in tickers:
        df = store.get_ticker(t)
        assert df.index[-1] == pd.Timestamp("2015-12-31") and df.index.is_unique
    stray = [p.name for p in (data / "yfinance").iterdir() if p.name.count(".") != 2 or p.suffix != ".parquet"]
    print(f"kill -9 during fetch: {kills} kills; cache whole after each; stray files left: {stray}")
