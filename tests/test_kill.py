"""kill -9 during `eqtrade train` (a real subprocess, killed at random points, several times): the
last checkpoint stays readable, --resume continues, and the finished run's metrics have every
evaluation exactly once (issue 12)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd

CFG = ('[run]\nsteps = 400\n[env]\nepisode_length = 40\n[agent]\nfamily = "plain"\nlearning_starts = 50\n'
       'batch_size = 16\neval_every = 50\ncheckpoint_every = 20\n')


def _start(args, log):
    return subprocess.Popen([sys.executable, "-m", "eqtrade.cli", "train", *args, "--no-progress"],
                            stdout=log, stderr=subprocess.STDOUT)


def test_train_survives_kill_minus_9_and_resumes(tmp_path):
    from eqtrade.agents import Agent

    cfg = tmp_path / "c.toml"
    cfg.write_text(CFG)
    out = tmp_path / "run"
    rng = np.random.default_rng(0)
    kills, resumed = 0, 0
    log = open(tmp_path / "log.txt", "w")
    for attempt in range(8):
        started = (out / "checkpoint.pt").exists()
        args = ["--out", str(out), "--resume"] if started else ["--config", str(cfg), "--out", str(out)]
        p = _start(args, log)
        time.sleep(float(rng.uniform(2.5, 6.0)))  # imports take ~2 s; then it trains
        if p.poll() is not None:
            assert p.returncode == 0, (tmp_path / "log.txt").read_text()[-2000:]
            break
        p.send_signal(signal.SIGKILL)
        p.wait()
        kills += 1
        resumed += started
        if (out / "checkpoint.pt").exists():
            Agent.load(out / "checkpoint.pt")  # readable after every kill
    else:
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
