"""Output directories are locked while a command writes them (eqtrade.lock): a second command
into the same --out stops with one line and touches nothing; a stale lock (its process died) is
taken over; two `eqtrade train` started at once into one --out: one runs, the other stops. Files
are written with the umask's mode, not mkstemp's 0600. Progress is plain lines in logs and pipes."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from eqtrade.cli import main
from eqtrade.lock import LOCK_NAME, DirectoryLocked, acquire, locked, read_lock, release
from eqtrade.outdirs import output_kind

CFG = ('[run]\nenv = "trading"\nsteps = 300\n[env]\nwindow = 8\nsplit = ["2015-01-01", "2015-12-31"]\n'
       'episode_length = 50\nticker = "KO"\n[eval_env]\nsplit = ["2016-01-01", "2016-12-31"]\nfull_period = true\n'
       'ticker = "KO"\n[agent]\nhidden = [16, 16]\nbatch_size = 16\nlearning_starts = 50\neval_every = 50\n'
       'checkpoint_every = 50\n')


@pytest.fixture
def cfg(tmp_path) -> Path:
    p = tmp_path / "c.toml"
    p.write_text(CFG)
    return p


def write_lock(directory: Path, pid: int, host: str | None = None, **extra) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    info = {"pid": pid, "host": host or socket.gethostname(), "command": "eqtrade train",
            "started": "2026-01-02T03:04:05+0000", **extra}
    (directory / LOCK_NAME).write_text(json.dumps(info))


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def snapshot(directory: Path) -> dict:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in directory.iterdir()}


def test_a_held_lock_stops_a_second_train_with_one_line_and_leaves_the_run_untouched(tmp_path, cfg, capsys):
    # the first run: killed before its first checkpoint, the state a new `train` would start over in
    out = tmp_path / "runs" / "X"
    out.mkdir(parents=True)
    (out / "config.toml").write_text('[run]\nalgo = "dqn"\n')
    (out / "metrics.csv").write_text("step,episode_return\n10,0.5\n")
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        write_lock(out, holder.pid)
        before = snapshot(out)
        for extra in ([], ["--resume"]):
            args = ["train", "--out", str(out), "--no-progress"] + (extra or ["--config", str(cfg)])
            assert main(args) == 2
            err = capsys.readouterr().err.strip()
            assert len(err.splitlines()) == 1, err
            assert err.startswith("eqtrade train: error: ") and f"{out} is in use by eqtrade train (pid {holder.pid} " \
                f"on {socket.gethostname()}, since 2026-01-02" in err and "use another --out" in err, err
        assert snapshot(out) == before  # the lock is the holder's, the files the first run's
    finally:
        holder.kill()
        holder.wait()


def test_a_stale_lock_of_a_dead_process_is_taken_over_and_released(tmp_path, cfg, capsys, caplog):
    out = tmp_path / "run"
    pid = dead_pid()
    write_lock(out, pid)
    assert main(["train", "--config", str(cfg), "--out", str(out), "--no-progress", "--steps", "100"]) == 0
    assert "taking over the stale lock" in caplog.text and f"pid {pid} is no longer running" in caplog.text
    assert not (out / LOCK_NAME).exists()  # released at the end
    assert (out / "checkpoint.pt").exists()
    # --resume of the finished run: its lock is gone
    assert main(["train", "--out", str(out), "--resume", "--steps", "150", "--no-progress"]) == 0
    assert pd.read_csv(out / "metrics.csv")["step"].max() == 150 and not (out / LOCK_NAME).exists()


def test_a_lock_of_another_host_is_refused_naming_the_host_and_how_to_remove_it(tmp_path, cfg, capsys):
    out = tmp_path / "run"
    write_lock(out, 1234, host="gpu-node-7")
    assert main(["train", "--config", str(cfg), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pid 1234 on gpu-node-7" in err and f"remove {out / LOCK_NAME}" in err, err
    assert [p.name for p in out.iterdir()] == [LOCK_NAME]


def test_a_pid_reused_by_a_younger_process_is_stale(tmp_path):
    out = tmp_path / "d"
    write_lock(out, os.getppid(), started_unix=1.0)  # "locked" in 1970, before the live process started
    with locked(out, "eqtrade backtest"):
        assert read_lock(out)["pid"] == os.getpid()
    assert not (out / LOCK_NAME).exists()


def test_the_lock_is_released_on_errors_and_ctrl_c_and_a_failed_start_leaves_no_folder(tmp_path, capsys):
    out = tmp_path / "new" / "run"
    for exc in (ValueError("bad"), KeyboardInterrupt()):
        with pytest.raises(type(exc)):
            with locked(out, "eqtrade train"):
                assert (out / LOCK_NAME).exists() and output_kind(out) is None  # the lock is not output
                raise exc
        assert not (tmp_path / "new").exists()  # the folders the lock made, removed again
    assert main(["train", "--out", str(out), "--steps", "0"]) == 2
    assert not (tmp_path / "new").exists()
    with locked(out, "eqtrade train"):
        with locked(out, "eqtrade train"):  # nested in one process: free
            pass
        assert (out / LOCK_NAME).exists()  # still held by the outer block
        with pytest.raises(DirectoryLocked, match="in use by eqtrade train"):
            acquire(out, "eqtrade compare")  # a second owner (here: this pid, alive)


def test_a_sweep_trial_takes_over_the_lock_of_its_own_sweep_from_a_lost_node(tmp_path):
    out = tmp_path / "d"
    write_lock(out, 999999, host="lost-node", tag="sweep:/s")
    with pytest.raises(DirectoryLocked, match="lost-node"):
        acquire(out, "eqtrade sweep trial t", tag="sweep:/other")
    created = acquire(out, "eqtrade sweep trial t", tag="sweep:/s")
    assert read_lock(out)["host"] == socket.gethostname()
    release(out, created)
    assert not (out / LOCK_NAME).exists()


def test_a_sweep_and_a_backtest_into_a_held_out_stop_before_their_checks(tmp_path, capsys):
    out = tmp_path / "out"
    write_lock(out, os.getpid(), host="other-node")
    spec = tmp_path / "s.toml"
    spec.write_text('[sweep]\nname = "x"\nconfig = "sac-relaxed"\n[sweep.grid]\n"agent.seed" = [0]\n')
    for args in (["sweep", str(spec), "--out", str(out), "--force"], ["backtest", "equal-weight", "--out", str(out)],
                 ["compare", str(tmp_path), "--out", str(out)], ["dmc", "--quick", "--out", str(out)]):
        assert main(args) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"eqtrade {args[0]}: error: {out} is in use") and len(err.splitlines()) == 1, err
    assert [p.name for p in out.iterdir()] == [LOCK_NAME]  # --force cleared nothing


def test_two_trains_started_at_once_into_one_out_one_runs_the_other_stops(tmp_path, cfg):
    out = tmp_path / "runs" / "X"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    procs = {family: subprocess.Popen([sys.executable, "-m", "eqtrade.cli", "train", "--config", str(cfg), "--agent",
                                       family, "--out", str(out), "--no-progress"], env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True) for family in ("plain", "relaxed")}
    done = {family: (p.wait(timeout=240), *p.communicate()) for family, p in procs.items()}
    codes = sorted(rc for rc, _, _ in done.values())
    assert codes == [0, 2], done
    (winner,) = [f for f, (rc, _, _) in done.items() if rc == 0]
    (loser,) = [f for f, (rc, _, _) in done.items() if rc == 2]
    err = done[loser][2].strip()
    assert len(err.splitlines()) == 1 and err.startswith("eqtrade train: error: ") and "in use by eqtrade train" in err, err
    assert f'family = "{winner}"' in (out / "config.toml").read_text()
    m = pd.read_csv(out / "metrics.csv")
    assert m["step"].is_monotonic_increasing and m["step"].max() == 300  # one run's rows, once
    assert m.dropna(subset=["eval_return"])["step"].tolist() == list(range(50, 301, 50))
    assert (out / "metrics.csv").read_text().count("step,") == 1 and not (out / LOCK_NAME).exists()


def _modes(directory: Path) -> dict[str, int]:
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in directory.rglob("*") if p.is_file()}


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600)])
def test_output_files_get_the_mode_the_umask_gives(tmp_path, cfg, capsys, umask, mode):
    old = os.umask(umask)
    try:
        csv = tmp_path / "p.csv"
        pd.DataFrame({"date": pd.bdate_range("2015-01-01", periods=300), "A": range(1, 301), "B": range(2, 302)}) \
            .to_csv(csv, index=False)
        assert main(["data", "import", str(csv), "--name", "mine", "--data-dir", str(tmp_path / "data")]) == 0
        data = _modes(tmp_path / "data")
        assert "manifest.json" in data and any(n.endswith(".parquet") for n in data)
        assert set(data.values()) == {mode}, {n: oct(m) for n, m in data.items()}
        if umask == 0o022:  # a train run: checkpoints, config, metrics, the plot
            assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "run"), "--steps", "100",
                         "--no-progress"]) == 0
            run = _modes(tmp_path / "run")
            assert {"checkpoint.pt", "config.toml", "metrics.csv", "learning_curve.png"} <= set(run)
            assert set(run.values()) == {mode}, {n: oct(m) for n, m in run.items()}
    finally:
        os.umask(old)


def test_symmetry_and_fetch_progress_are_plain_lines_when_redirected(fake_yahoo, data_dir, capsys):
    assert main(["symmetry", "--data", "KO", "PG", "--boot", "3", "--window", "8", "--split",
                 "2015-01-01:2015-12-31"]) == 0
    out, err = capsys.readouterr()
    assert "\r" not in out + err
    assert "symmetry gap: 3/3 assets (100%)" in err
    assert main(["fetch", "--tickers", "AAPL", "MSFT", "--start", "2020-01-01", "--end", "2020-03-31"]) == 0
    out, err = capsys.readouterr()
    assert "\r" not in out + err
    assert "fetch: 1/2 tickers (50%)" in err and "fetch: 2/2 tickers (100%)" in err, err
    assert main(["fetch", "--tickers", "AAPL", "--no-progress", "--start", "2020-01-01", "--end", "2020-03-31"]) == 0
    assert "fetch:" not in capsys.readouterr().err


def test_progress_is_a_bar_on_a_terminal_and_lines_elsewhere(monkeypatch):
    from eqtrade.util import LineProgress, progress_bar, progress_mode

    assert progress_mode(True) == "lines" and progress_mode("lines") == "lines" and progress_mode(False) is None
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert progress_mode(True) == "bar" and progress_mode("lines") == "lines"
    bar = progress_bar(range(3), desc="x", progress=True)
    assert not isinstance(bar, LineProgress)
    bar.close()
