"""`eqtrade sweep`: studies on Ray Tune. A tiny sweep (2 families x 2 seeds x a few hundred steps)
on a local Ray instance; its table equals `compare` on the same run directories; an interrupted
sweep resumes without redoing finished trials; a trial that raises is reported and the others
finish; a two-node cluster on this machine runs trials on both nodes and gives the same table."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("ray", reason="ray[tune] is installed by `make setup` (constraints.txt)")

from eqtrade.backtest import compare_runs  # noqa: E402
from eqtrade.cli import main  # noqa: E402
from eqtrade.sweep import load_spec, run_sweep  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SPLIT = "2019-01-01:2019-12-31"

TINY = """
[sweep]
name = "tiny"
config = "sac-relaxed"
max_failures = 0

[sweep.grid]
{grid}

[sweep.report]
split = "{split}"

[run]
steps = {steps}

[env]
episode_length = 100
split = ["2012-01-01", "2014-12-31"]  # not the 15-year train split: every evaluation also rolls it out

[eval_env]
split = ["2015-01-01", "2015-12-31"]

[agent]
hidden = [4]
learning_starts = 100
eval_every = 100
checkpoint_every = 100
batch_size = 32
buffer_size = 2000
"""
GRID = '"agent.family" = ["plain", "exact"]\n"agent.seed" = [0, 1]'


def write_spec(path: Path, grid: str = GRID, steps: int = 300) -> Path:
    path.write_text(TINY.format(grid=grid, split=SPLIT, steps=steps))
    return path


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory, shared_ray):
    shared_ray.start()  # the sweep joins the session's instance (and leaves it running: it did not start it)
    tmp = tmp_path_factory.mktemp("sweep")
    spec = load_spec(write_spec(tmp / "tiny.toml"))
    rows, table = run_sweep(spec, tmp / "out", cpus=2, progress=False)
    return spec, tmp / "out", rows, table


def _table(df: pd.DataFrame) -> pd.DataFrame:
    return df.reset_index(drop=True).round(10)


def test_a_tiny_sweep_runs_every_trial_as_an_ordinary_run(local_sweep):
    spec, out, rows, table = local_sweep
    assert sorted(r["trial"] for r in rows) == sorted(n for n, _ in spec.trials())
    assert all(r["status"] == "finished" for r in rows), rows
    for r in rows:
        run = Path(r["run"])
        assert {"config.toml", "checkpoint.pt", "best.pt", "metrics.csv", "trial.json"} <= {p.name for p in run.iterdir()}
        m = pd.read_csv(run / "metrics.csv")
        assert m["eval_return"].notna().sum() == 3  # evaluations at 100, 200, 300 steps, reported to Tune too
    cfg = (out / "runs" / "family=exact,seed=1" / "config.toml").read_text()
    assert 'family = "exact"' in cfg and "seed = 1" in cfg
    # the two seeds of each family trained as one stacked trial (--pack, default 5); one run directory each
    assert {r["pack"] for r in rows} == {"family=plain,seed=0+1", "family=exact,seed=0+1"}
    assert {json.loads((Path(r["run"]) / "trial.json").read_text())["stacked_with"] for r in rows} == {2}
    assert all(r["step"] == 300 and r["eval_return"] is not None for r in rows)
    state = json.loads((out / "sweep.json").read_text())
    assert state["name"] == "tiny" and len(state["trials"]) == 4
    assert state["pack_slots"] == 2  # the packs balanced over --cpus (kept for --resume)
    assert (out / "tune").is_dir()  # Ray Tune's experiment state and logs live in the sweep directory


def test_the_sweep_table_equals_compare_on_the_same_runs(local_sweep, tmp_path):
    _, out, rows, table = local_sweep
    again = compare_runs(sorted(r["run"] for r in rows), ("2019-01-01", "2019-12-31"), (0.0,), tmp_path / "cmp")
    pd.testing.assert_frame_equal(_table(table), _table(again))
    assert {f.split("/")[0] for f in table["family"] if not f.startswith("baseline")} >= {"plain", "exact"}
    assert (out / "report" / "summary.csv").exists()


def test_a_joined_instance_is_left_running_and_the_same_out_needs_resume_or_force(local_sweep, capsys):
    import ray

    assert ray.is_initialized()  # the sweep joined the session's instance: it is not the sweep's to stop
    spec, out, _, _ = local_sweep
    assert main(["sweep", spec.source, "--out", str(out), "--no-progress"]) == 2
    assert "--resume" in capsys.readouterr().err


@pytest.mark.parametrize("running", [False, True])
def test_a_sweep_stops_the_instance_it_started_even_when_interrupted_and_leaves_a_joined_one(tmp_path, monkeypatch,
                                                                                             running, shared_ray):
    """The engine's side of Ray's lifetime, without starting one (each start and stop costs seconds;
    the sweeps above join the session's instance; `shared_ray` keeps the test on their worker): a sweep that found no instance starts one and shuts
    it down, also when Ctrl-C stops the Tuner; one that found an instance running leaves it running."""
    import ray
    from ray import tune

    from eqtrade.sweep.engine import run_trials

    calls = []
    monkeypatch.setattr(ray, "is_initialized", lambda: running)
    monkeypatch.setattr(ray, "init", lambda *a, **k: calls.append("init"))
    monkeypatch.setattr(ray, "shutdown", lambda: calls.append("shutdown"))
    monkeypatch.setattr(tune, "with_parameters", lambda fn, **kw: fn)
    monkeypatch.setattr(tune, "with_resources", lambda fn, res: fn)

    class Tuner:
        def __init__(self, *a, **k):
            pass

        @staticmethod
        def can_restore(path):
            return False

        def fit(self):
            calls.append("fit")
            raise KeyboardInterrupt

    monkeypatch.setattr(tune, "Tuner", Tuner)
    with pytest.raises(KeyboardInterrupt):
        run_trials({"t": {}}, tmp_path / "out", trial_fn=lambda cfg, run_dir, report: {}, progress=False)
    assert calls == (["fit"] if running else ["init", "fit", "shutdown"])


def test_the_sweep_and_its_trials_leave_no_lock_and_a_held_sweep_is_refused(local_sweep, capsys):
    from eqtrade.lock import LOCK_NAME

    spec, out, rows, _ = local_sweep
    assert not list(out.rglob(LOCK_NAME + "*"))  # the driver's and every trial's lock, released
    (out / LOCK_NAME).write_text(json.dumps({"pid": os.getpid(), "host": "other-node", "command": "eqtrade sweep"}))
    try:
        assert main(["sweep", spec.source, "--out", str(out), "--resume", "--no-progress"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"eqtrade sweep: error: {out} is in use by eqtrade sweep (pid {os.getpid()} on "
                              "other-node") and len(err.splitlines()) == 1, err
    finally:
        (out / LOCK_NAME).unlink()


def test_a_trial_locks_its_run_directory_and_refuses_one_in_use(tmp_path):
    from eqtrade.lock import LOCK_NAME, DirectoryLocked, read_lock
    from eqtrade.sweep.engine import _trainable

    seen = []

    def trial(cfg, run_dir, report):
        seen.append(read_lock(run_dir))
        return {}

    run = tmp_path / "sweep" / "runs" / "t"
    _trainable({"trial": "t"}, {"t": {"dir": str(run)}}, str(tmp_path / "sweep"), trial, skip_done=False)
    assert seen[0]["pid"] == os.getpid() and seen[0]["command"] == "eqtrade sweep trial t"
    assert seen[0]["tag"] == f"sweep:{(tmp_path / 'sweep').resolve()}" and not (run / LOCK_NAME).exists()
    (run / LOCK_NAME).write_text(json.dumps({"pid": os.getpid(), "host": "other-node", "command": "eqtrade train"}))
    with pytest.raises(DirectoryLocked, match="other-node"):
        _trainable({"trial": "t"}, {"t": {"dir": str(run)}}, str(tmp_path / "sweep"), trial, skip_done=False)
    assert len(seen) == 1


@pytest.mark.slow
def test_a_two_node_cluster_runs_trials_on_both_nodes_and_gives_the_same_table(local_sweep, tmp_path, no_ray):
    """Two raylets and four trials: slow. Guarded in the default suite by
    test_a_sweep_given_an_address_joins_that_cluster_and_ships_the_package (the engine joins the
    cluster at --address with the package in the runtime env), test_each_trial_records_the_ray_node_it_ran_on
    and test_the_sweep_table_equals_compare_on_the_same_runs."""
    from ray.cluster_utils import Cluster

    spec, _, _, local_table = local_sweep
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        rows, table = run_sweep(spec, tmp_path / "out", address=cluster.address, progress=False)
    finally:
        cluster.shutdown()
    assert all(r["status"] == "finished" for r in rows), rows
    nodes = {json.loads((Path(r["run"]) / "trial.json").read_text())["node"] for r in rows}
    assert len(nodes) == 2, nodes
    pd.testing.assert_frame_equal(_table(table.drop(columns=[], errors="ignore")), _table(local_table))


def test_each_trial_records_the_ray_node_it_ran_on(local_sweep):
    _, _, rows, _ = local_sweep
    nodes = {json.loads((Path(r["run"]) / "trial.json").read_text())["node"] for r in rows}
    assert len(nodes) == 1 and all(len(n) == 56 and int(n, 16) >= 0 for n in nodes), nodes  # a Ray NodeID (hex)


def test_a_sweep_given_an_address_joins_that_cluster_and_ships_the_package(tmp_path, monkeypatch):
    """The engine's side of a cluster sweep, without one: with an address, ray.init joins it and
    ships the eqtrade package and the trials' environment with the job (the slow two-node test runs one)."""
    import ray

    import eqtrade

    class Joined(Exception):
        pass

    calls = []

    def fake_init(*args, **kw):
        calls.append((args, kw))
        raise Joined

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", fake_init)
    spec = load_spec(write_spec(tmp_path / "tiny.toml"))
    with pytest.raises(Joined):
        run_sweep(spec, tmp_path / "out", address="10.1.2.3:6379", progress=False)
    ((args, kw),) = calls
    assert kw["address"] == "10.1.2.3:6379" and not args
    assert kw["runtime_env"]["py_modules"] == [str(Path(eqtrade.__file__).resolve().parent)]
    assert kw["runtime_env"]["env_vars"]["OMP_NUM_THREADS"] == "1"


def test_a_resumed_sweep_does_not_run_its_finished_trials_again(local_sweep, ray_instance, capsys):
    """--resume on a sweep whose trials have finished: none is run again (the slow test interrupts a
    sweep with Ctrl-C first). Last of the tests on local_sweep: it rewrites the report."""
    spec, out, rows, _ = local_sweep
    before = {p.parent.name: (p.stat().st_mtime_ns, (p.parent / "metrics.csv").read_bytes())
              for p in out.glob("runs/*/trial.json")}
    assert len(before) == 4
    assert main(["sweep", spec.source, "--out", str(out), "--resume", "--no-progress"]) == 0
    assert "4 of 4 trial(s) finished" in capsys.readouterr().out
    after = {p.parent.name: (p.stat().st_mtime_ns, (p.parent / "metrics.csv").read_bytes())
             for p in out.glob("runs/*/trial.json")}
    assert after == before
    assert (out / "report" / "summary.csv").exists()
    from eqtrade.backtest import ledger

    reads = [e for e in ledger.read(out) if e["event"] == "test_read"]  # the same study: a repeat, not refused
    assert [e["repeat"] for e in reads] == [False, True] and reads[0]["content"] == reads[1]["content"]


def test_a_trial_that_finished_in_an_earlier_session_is_not_run_again(tmp_path, local_sweep, ray_instance):
    """The trainable's own check (a trial that Ray Tune restores as unfinished, although its run
    wrote trial.json before Ctrl-C arrived): skipped, unless the caller decides (the dmc suite)."""
    from eqtrade.sweep.engine import _trainable

    _, out, rows, _ = local_sweep
    state = json.loads((out / "sweep.json").read_text())
    name = sorted(state["trials"])[0]
    trials = {name: dict(state["trials"][name], dir=str(out / "runs" / name))}
    called = []
    _trainable({"trial": name}, trials, str(out), lambda cfg, run_dir, report: called.append(run_dir), skip_done=True)
    assert called == []
    fresh = tmp_path / "fresh"
    trials = {name: dict(state["trials"][name], dir=str(fresh))}
    _trainable({"trial": name}, trials, str(out), lambda cfg, run_dir, report: called.append(run_dir) or {},
               skip_done=True)
    assert called == [fresh] and json.loads((fresh / "trial.json").read_text())["status"] == "finished"


def test_ctrl_c_during_a_sweep_exits_130_and_says_how_to_resume(tmp_path, monkeypatch, capsys):
    import eqtrade.sweep

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(eqtrade.sweep, "run_sweep", interrupted)
    spec_path = write_spec(tmp_path / "tiny.toml")
    assert main(["sweep", str(spec_path), "--out", str(tmp_path / "out"), "--no-progress"]) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and f"--out {tmp_path / 'out'} --resume" in err


@pytest.mark.slow
def test_an_interrupted_sweep_resumes_without_redoing_finished_trials(tmp_path, ray_instance):
    """A sweep in a subprocess, Ctrl-C once a trial has finished, then --resume: slow (its own Ray
    instance in the subprocess, then three more trials). Guarded in the default suite by
    test_a_resumed_sweep_does_not_run_its_finished_trials_again, test_a_trial_that_finished_in_an_earlier_session_is_not_run_again,
    test_ctrl_c_during_a_sweep_exits_130_and_says_how_to_resume and, for Ctrl-C on Ray Tune with trials
    running, test_dmc.py::test_ctrl_c_stops_a_parallel_suite_with_the_running_runs_checkpointed."""
    # 300 steps: a trial takes ~15 s (mostly its worker's imports), so with --cpus 1 the second is
    # still running when the first has finished and Ctrl-C is sent
    spec_path = write_spec(tmp_path / "tiny.toml", steps=300)
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "eqtrade.cli", "sweep", str(spec_path), "--out", str(out),
                             "--cpus", "1", "--no-progress"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and not list(out.glob("runs/*/trial.json")):
        assert proc.poll() is None, proc.stdout.read().decode()[-3000:]
        time.sleep(0.5)
    done_first = list(out.glob("runs/*/trial.json"))
    assert done_first, "no trial finished in time"
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in the terminal reaches the whole process group
    try:
        text = proc.communicate(timeout=60)[0].decode()
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise AssertionError("the sweep did not stop within 60 s of Ctrl-C")
    assert proc.returncode == 130, text[-3000:]
    assert "--resume" in text
    finished = {p.parent.name: (p.stat().st_mtime_ns, (p.parent / "metrics.csv").read_bytes())
                for p in out.glob("runs/*/trial.json")}
    assert 1 <= len(finished) < 4
    assert main(["sweep", str(spec_path), "--out", str(out), "--resume", "--no-progress"]) == 0
    for name, (mtime, metrics) in finished.items():  # finished trials were not run again
        p = out / "runs" / name
        assert (p / "trial.json").stat().st_mtime_ns == mtime and (p / "metrics.csv").read_bytes() == metrics
    assert len(list(out.glob("runs/*/trial.json"))) == 4
    assert (out / "report" / "summary.csv").exists()


def test_a_trial_that_raises_is_reported_and_the_others_finish(tmp_path, capsys, ray_instance):
    # lr = 1e30 passes the config's checks (a learning rate > 0) and diverges in training; a negative
    # one is refused before any trial runs (test_bad_specs_are_one_line_errors)
    spec_path = write_spec(tmp_path / "bad.toml", grid='"agent.family" = ["plain"]\n"agent.lr" = [0.0003, 1e30]',
                           steps=200)
    rc = main(["sweep", str(spec_path), "--out", str(tmp_path / "out"), "--cpus", "2", "--no-progress"])
    cap = capsys.readouterr()
    assert rc == 1
    assert "FAILED trial family=plain,lr=1e+30" in cap.err and "learning rate" in cap.err
    assert "1 of 2 trial(s) finished" in cap.out
    # --no-progress: none of Tune's own output (its configuration box, a TensorBoard hint into Ray's session)
    assert "Configuration for experiment" not in cap.out and "tensorboard" not in (cap.out + cap.err).lower()
    assert (tmp_path / "out" / "runs" / "family=plain,lr=0.0003" / "trial.json").exists()
    assert (tmp_path / "out" / "report" / "summary.csv").exists()  # the table of what finished


def test_bad_specs_are_one_line_errors(tmp_path, capsys):
    cases = [
        ("[run]\nsteps = 10\n", "no [sweep] table"),
        ('[sweep]\nname = "x"\nfoo = 1\n', "unknown [sweep] option"),
        ('[sweep]\nname = "x"\n[sweep.grid]\n"agent.seed" = 3\n', "non-empty list"),
        ('[sweep]\nname = "x"\n[sweep.grid]\n"seed" = [1]\n', "TABLE.FIELD"),
        ('[sweep]\nname = "x"\n[sweep.grid]\n"agent.family" = ["plain", "nope"]\n', "nope"),
        ('[sweep]\nname = "x"\n[sweep.search]\n"agent.lr" = { normal = [0, 1] }\n', "loguniform"),
        ('[sweep]\nname = "x"\nmode = "up"\n', "mode"),
        # every trial's config is checked before any runs: agent option ranges, the step budget
        ('[sweep]\nname = "x"\n[sweep.grid]\n"agent.lr" = [0.001, -1.0]\n', "[agent] lr = -1.0 is out of range"),
        ('[sweep]\nname = "x"\n[sweep.grid]\n"run.steps" = [6000, 800]\n',
         "[run] steps 800 must exceed [agent] learning_starts 1000"),
        ('[sweep]\nname = "x"\n[run]\nsteps = 2000\n[sweep.search]\n"agent.learning_starts" = { randint = [100, 5000] }\n',
         "learning_starts 4999"),
        ('[sweep]\nname = "x"\n[sweep.report]\nobs_noise = [0.0, -0.1]\n', "[sweep.report] obs_noise = -0.1 is out of range"),
    ]
    for i, (text, words) in enumerate(cases):
        p = tmp_path / f"s{i}.toml"
        p.write_text(text)
        assert main(["sweep", str(p), "--out", str(tmp_path / f"o{i}"), "--no-progress"]) == 2, text
        err = capsys.readouterr().err
        assert words in err and "Traceback" not in err, (text, err)
        assert not (tmp_path / f"o{i}").exists()  # nothing started, nothing written


SEARCH = ('[sweep.search]\nsamples = 4\ngrace = 100\n"agent.lr" = { loguniform = [1e-4, 1e-3] }\n'
          '"agent.reward_scale" = { choice = [10.0, 100.0] }\n\n[sweep.report]')


def search_text(steps: int) -> str:
    return TINY.format(grid="", split=SPLIT, steps=steps).replace("[sweep.grid]\n", "").replace("[sweep.report]", SEARCH)


@pytest.mark.slow
def test_a_search_samples_the_ranges_and_asha_stops_poor_trials_early(tmp_path, ray_instance):
    """Four sampled trials on Ray: slow. Guarded in the default suite by
    test_a_search_is_optuna_over_the_ranges_with_asha_and_each_trial_trains_its_sample."""
    text = search_text(400)
    spec = load_spec(write_text(tmp_path / "search.toml", text))
    rows, table = run_sweep(spec, tmp_path / "out", cpus=2, progress=False)
    assert table is None and len(rows) == 4  # a search tunes on valid: no report table
    assert {r["status"] for r in rows} <= {"finished", "stopped"} and any(r["status"] == "finished" for r in rows)
    for r in rows:
        lr, scale = r["params"]["agent.lr"], r["params"]["agent.reward_scale"]
        assert 1e-4 <= lr <= 1e-3 and scale in (10.0, 100.0)
        cfg = (Path(r["run"]) / "config.toml").read_text()
        assert f"lr = {lr!r}" in cfg and f"reward_scale = {scale!r}" in cfg  # the trial trained what was sampled
        steps = pd.read_csv(Path(r["run"]) / "metrics.csv")["step"].max()
        assert (steps == 400) == (r["status"] == "finished")


def write_text(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_a_search_is_optuna_over_the_ranges_with_asha_and_each_trial_trains_its_sample(tmp_path, monkeypatch,
                                                                                       ray_instance):
    """The search without running one (that is the slow test above): the spec's ranges become Tune's
    space (log-uniform, choice), searched by Optuna's TPE with ASHA over the trial's steps (grace
    from the spec), and a trial trains its sampled values on the base config."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch

    from eqtrade.sweep.engine import _search_space, _trainable

    spec = load_spec(write_text(tmp_path / "search.toml", search_text(400)))
    search = dict(spec.search, max_steps=400)
    space, cfg = _search_space(search, "eval_return", "max")
    lr, scale = space["agent"]["lr"], space["agent"]["reward_scale"]
    assert (lr.lower, lr.upper) == (1e-4, 1e-3) and type(lr.get_sampler()).__name__ == "_LogUniform"
    assert list(scale.categories) == [10.0, 100.0]
    assert isinstance(cfg.search_alg, OptunaSearch) and cfg.num_samples == 4
    assert isinstance(cfg.scheduler, ASHAScheduler) and cfg.scheduler._time_attr == "step"
    rungs = [r[0] for r in cfg.scheduler._brackets[0]._rungs]  # ASHA's milestones: grace, 2x grace, ...
    assert min(rungs) == 100 and cfg.scheduler._max_t == 401 and cfg.metric == "eval_return" and cfg.mode == "max"

    class Context:
        def get_trial_id(self):
            return "abc123"

    monkeypatch.setattr(tune, "get_context", lambda: Context())
    seen = []
    _trainable({"agent": {"lr": 5e-4, "reward_scale": 10.0}}, {"__base__": spec.base}, str(tmp_path / "out"),
               lambda c, run_dir, report: seen.append((c, run_dir)) or {}, skip_done=True)
    ((c, run_dir),) = seen
    assert c["agent"]["lr"] == 5e-4 and c["agent"]["reward_scale"] == 10.0 and c["agent"]["family"] == "relaxed"
    assert run_dir == tmp_path / "out" / "runs" / "abc123" and (run_dir / "trial.json").exists()


def test_ray_tunes_python_resume_hint_is_dropped_and_other_warnings_kept():
    """After Ctrl-C Ray Tune logs `Resume experiment with: Tuner.restore(path=...)`, right above
    eqtrade's own `eqtrade sweep ... --resume`: two different instructions. The engine's filter drops it."""
    import logging

    from eqtrade.sweep.engine import _no_tune_resume_hint

    def rec(msg):
        return logging.LogRecord("ray.tune.tune", logging.WARNING, __file__, 1, msg, None, None)

    assert not _no_tune_resume_hint(rec('Experiment has been interrupted, but the most recent state was saved.\n'
                                        'Resume experiment with: Tuner.restore(path="/x/tune", trainable=...)'))
    assert _no_tune_resume_hint(rec("Trial t errored after 3 iterations"))


def test_empty_duplicate_and_oversized_grids_are_one_line_errors_before_ray(tmp_path, capsys):
    """An empty [sweep.grid], a value given twice in an axis, two values with one trial name, and
    a grid of more than MAX_TRIALS trials (counted, not expanded) fail before Ray starts."""
    from eqtrade.sweep.spec import MAX_TRIALS

    big = ", ".join(map(str, range(1000)))
    cases = [
        ("", "[sweep.grid] is empty: give at least one KEY = [values]"),
        ('"agent.seed" = [0, 1, 0]', "[sweep.grid] 'agent.seed' gives 0 more than once"),
        ('"agent.family" = ["plain", "exact", "plain"]', "'agent.family' gives 'plain' more than once"),
        ('"agent.gamma" = [0.5, 0.50000001]', "both make the trial name 'gamma=0.5'"),
        (f'"agent.seed" = [{big}]\n"run.steps" = [{big}]',
         f"[sweep.grid] makes 1,000,000 trials (1000 x 1000), more than {MAX_TRIALS:,}"),
    ]
    for i, (grid, words) in enumerate(cases):
        p = write_spec(tmp_path / f"g{i}.toml", grid=grid)
        t0 = time.time()
        assert main(["sweep", str(p), "--out", str(tmp_path / f"o{i}"), "--no-progress"]) == 2, grid[:80]
        err = capsys.readouterr().err
        assert words in err and str(p) in err and len(err.strip().splitlines()) == 1, err
        assert time.time() - t0 < 5 and not (tmp_path / f"o{i}").exists()
    assert len(load_spec(write_spec(tmp_path / "ok.toml", grid='"agent.seed" = [0, 1]')).trials()) == 2
    p = tmp_path / "nonoise.toml"  # the table's noise levels: none would fail after every trial has run
    p.write_text(TINY.format(grid=GRID, split=SPLIT, steps=300).replace("[sweep.report]\n", "[sweep.report]\nobs_noise = []\n"))
    assert main(["sweep", str(p), "--out", str(tmp_path / "on"), "--no-progress"]) == 2
    assert "[sweep.report] obs_noise = [] gives no noise level" in capsys.readouterr().err
    ok = write_spec(tmp_path / "ok.toml", grid='"agent.seed" = [0, 1]')
    for pack in ("0", "10001"):  # as many runs per pack as --seeds may name, no more
        assert main(["sweep", str(ok), "--pack", pack, "--out", str(tmp_path / "op"), "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert f"--pack {pack} is out of range" in err and "10000" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "op").exists()


def test_packs_are_balanced_over_the_cpus_they_share():
    """With the CPUs given, a group's runs split evenly, and into one more pack where a CPU would
    otherwise sit idle while the last pack trains alone; the estimate is the list schedule."""
    from eqtrade.sweep.engine import STACK_FIXED, _balanced, _makespan, pack_trials

    def cfg(family, seed):
        return {"run": {"algo": "sac", "steps": 300}, "agent": {"family": family, "seed": seed}}

    # the §1b study on 2 CPUs: three families of 5 seeds; the last family as 3 + 2 beside nothing idle
    trials = {f"{f}-{s}": cfg(f, s) for f in ("plain", "exact", "relaxed") for s in range(5)}
    packs = pack_trials(trials, 5, slots=2)
    assert [len(p) for p in packs.values()] == [5, 5, 3, 2]
    assert packs["relaxed-0+2"] == ["relaxed-0", "relaxed-1", "relaxed-2"] and packs["relaxed-3+1"] == ["relaxed-3", "relaxed-4"]
    assert sorted(n for p in packs.values() for n in p) == sorted(trials)  # every trial once
    assert _makespan([5, 5, 3, 2], 2) < _makespan([5, 5, 5], 2) == 2 * (STACK_FIXED + 5)
    assert [len(p) for p in pack_trials(trials, 5).values()] == [5, 5, 5]  # no CPUs given: as before
    assert [len(p) for p in pack_trials(trials, 5, slots=3).values()] == [5, 5, 5]  # one pack per CPU already
    # one setting's 5 seeds on 2 CPUs: two stacks side by side (a stack of 3 is shorter than one of 5)
    assert _balanced([5], 5, 2) == [[3, 2]]
    # even splits where they are shorter: 7 runs on 2 CPUs as 4 + 3, not 5 + 2; on one CPU as before
    assert _balanced([7], 5, 2) == [[4, 3]] and _balanced([7], 5, 1) == [[5, 2]]
    # a split that lengthens the schedule is not made: 36 runs as 8 packs (4 rounds), not 9 (5 rounds)
    assert _balanced([36], 5, 2) == [[5, 5, 5, 5, 4, 4, 4, 4]]
    for counts in ([1], [2, 9], [5, 5, 5, 5], [12, 3], [40, 1, 7]):  # never worse than the plain packing
        for slots in (2, 3, 4):
            sizes = _balanced(counts, 5, slots)
            assert [sum(g) for g in sizes] == counts and max(k for g in sizes for k in g) <= 5
            plain = [min(5, n - i) for n in counts for i in range(0, n, 5)]
            assert _makespan([k for g in sizes for k in g], slots) <= _makespan(plain, slots)


def test_a_resumed_sweep_packs_over_the_cpus_it_started_with(tmp_path, monkeypatch):
    """The packs a sweep starts with are the ones --resume restores in Ray Tune: the CPU count they
    were balanced over is kept in sweep.json and used again whatever --cpus says now; a sweep
    saved before the packs were balanced (no pack_slots) resumes with the packing it had."""
    from eqtrade.sweep import study

    seen = []
    monkeypatch.setattr(study, "run_trials", lambda *a, **kw: seen.append(kw["pack_slots"]) or [])
    spec = load_spec(write_spec(tmp_path / "tiny.toml"))
    out = tmp_path / "out"
    run_sweep(spec, out, cpus=3, progress=False)
    assert json.loads((out / "sweep.json").read_text())["pack_slots"] == 3
    run_sweep(spec, out, cpus=1, resume=True, progress=False)
    state = json.loads((out / "sweep.json").read_text())
    assert state["pack_slots"] == 3
    del state["pack_slots"]
    (out / "sweep.json").write_text(json.dumps(state))
    run_sweep(spec, out, cpus=2, resume=True, progress=False)
    run_sweep(spec, tmp_path / "cluster", address="auto", progress=False)  # a cluster's size is not known here
    assert seen == [3, 3, None, None]


def test_grid_trials_pack_by_everything_but_the_seed_and_split():
    from eqtrade.sweep.engine import pack_trials

    def cfg(family, seed, split=("2012-01-01", "2014-12-31"), algo="sac"):
        return {"run": {"algo": algo, "steps": 300}, "env": {"split": list(split)},
                "agent": {"family": family, "seed": seed}}

    trials = {f"{f}-{s}": cfg(f, s) for f in ("plain", "exact") for s in range(7)}
    trials["fold2"] = cfg("plain", 0, ("2013-01-01", "2015-12-31"))  # a fold: stacks with plain
    trials["dqn-0"], trials["dqn-1"] = cfg("plain", 0, algo="dqn"), cfg("plain", 1, algo="dqn")  # DQN stacks too
    packs = pack_trials(trials, 5)
    assert packs["plain-0+4"] == [f"plain-{s}" for s in range(5)]
    assert packs["plain-5+2"] == ["plain-5", "plain-6", "fold2"]
    assert packs["exact-0+4"] == [f"exact-{s}" for s in range(5)] and packs["exact-5+1"] == ["exact-5", "exact-6"]
    assert packs["dqn-0+1"] == ["dqn-0", "dqn-1"]  # with each other, never with SAC runs
    assert sorted(n for ns in packs.values() for n in ns) == sorted(trials)  # every trial once
    assert pack_trials(trials, 1) == {n: [n] for n in trials}



def test_trials_interrupted_after_a_checkpoint_resume_from_it(tmp_path):
    """A trial (and a pack of two) stopped after a checkpoint, as Ctrl-C or a lost node leaves it,
    continues from that checkpoint when the sweep resumes: the trial's config is the spec's,
    unresolved, and the run's checkpoint was trained with every option resolved (the per-asset
    encoder's window and assets...), which once read as an edit and failed every such trial."""
    from eqtrade.agents import Agent
    from eqtrade.sweep.engine import train_pack, train_trial, trial_configs

    spec = load_spec(write_spec(tmp_path / "tiny.toml", grid='"agent.family" = ["plain"]\n"agent.seed" = [0, 1, 2]',
                                steps=200))
    trials = trial_configs(spec)
    names = sorted(trials)
    assert trials[names[0]]["agent"]["encoder"] == {"kind": "per_asset"}  # the spec's, not resolved
    halfway = {n: dict(trials[n], run=dict(trials[n]["run"], steps=100 + 100 * (n == names[0]))) for n in names}
    dirs = {n: tmp_path / "runs" / n for n in names}
    train_trial(copy.deepcopy(halfway[names[0]]), dirs[names[0]], lambda row: None)
    train_pack([copy.deepcopy(halfway[n]) for n in names[1:]], [dirs[n] for n in names[1:]], lambda row: None)
    for n in names:
        assert Agent.load(dirs[n] / "checkpoint.pt").step == (200 if n == names[0] else 100)
    rows = []
    train_trial(copy.deepcopy(dict(trials[names[0]], run=dict(trials[names[0]]["run"], steps=300))), dirs[names[0]],
                rows.append)
    infos = train_pack([copy.deepcopy(trials[n]) for n in names[1:]], [dirs[n] for n in names[1:]], rows.append)
    assert [i["steps"] for i in infos] == [200, 200]
    assert Agent.load(dirs[names[0]] / "checkpoint.pt").step == 300
    for n in names[1:]:  # resumed, not restarted: the metrics rows of the first half are still there
        steps = pd.read_csv(dirs[n] / "metrics.csv")["step"].dropna().astype(int).tolist()
        assert steps[0] <= 100 and steps[-1] == 200
    assert {r["step"] for r in rows} == {300, 200}
    # a spec edited since: refused, not half the trials trained one way and half the other
    edited = dict(trials[names[0]], agent=dict(trials[names[0]]["agent"], gamma=0.5))
    with pytest.raises(ValueError, match=r"was started with \[agent\] gamma = 0.9, but the spec now says 0.5"):
        train_trial(edited, dirs[names[0]], rows.append)


def test_a_pack_reports_to_tune_after_every_run_has_saved_its_checkpoint(tmp_path):
    """Ray Tune stops an interrupted sweep's trials at their next report, so each run of a pack
    must have saved the checkpoint of the reported step by then (the report once came between the
    first run's checkpoint and the others': those restarted from step 0 on resume)."""
    from eqtrade.agents.checkpoint import read
    from eqtrade.sweep.engine import train_pack, trial_configs

    spec = load_spec(write_spec(tmp_path / "tiny.toml", grid='"agent.family" = ["plain"]\n"agent.seed" = [0, 1, 2]',
                                steps=200))
    trials = trial_configs(spec)
    dirs = [tmp_path / "runs" / n for n in sorted(trials)]
    seen = []

    def report(row):  # at every evaluation (every 100 steps, as the checkpoints)
        seen.append((row["step"], [read(d / "checkpoint.pt")["step"] for d in dirs]))

    train_pack([copy.deepcopy(trials[n]) for n in sorted(trials)], dirs, report)
    assert seen == [(100, [100, 100, 100]), (200, [200, 200, 200])]


def test_a_pack_stopped_by_tune_at_a_report_saves_every_run_there(tmp_path):
    """Ray Tune stops a trial inside its report (sys.exit); where the evaluation's step is not a
    checkpoint step (the shipped strategies evaluate every 1 000 steps and checkpoint every 2 000)
    the stop must still save every run's checkpoint at that step."""
    from eqtrade.agents.checkpoint import read
    from eqtrade.sweep.engine import train_pack, trial_configs

    spec = load_spec(write_spec(tmp_path / "tiny.toml", grid='"agent.family" = ["plain"]\n"agent.seed" = [0, 1]',
                                steps=300))
    trials = trial_configs(spec)
    for cfg in trials.values():
        cfg["agent"]["checkpoint_every"] = 200  # evaluations every 100 steps
    dirs = [tmp_path / "runs" / n for n in sorted(trials)]

    def stop_at_100(row):  # the step of the first evaluation, not a checkpoint step
        if row["step"] == 100:
            sys.exit(0)  # as ray.train's session does in the report of a trial being stopped

    with pytest.raises(SystemExit):
        train_pack([copy.deepcopy(trials[n]) for n in sorted(trials)], dirs, stop_at_100)
    assert [read(d / "checkpoint.pt")["step"] for d in dirs] == [100, 100]
