"""Inputs that cannot hurt (issue 12, items 6 and 7): no command writes over another's output,
bad configs and arguments are one-line errors with exit code 2, failed starts leave nothing."""

from __future__ import annotations

import pandas as pd
import pytest

from eqtrade.cli import main
from eqtrade.outdirs import check_output_dir, output_kind

FAST = ["--steps", "30"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("r") / "run"
    cfg = out.parent / "tiny.toml"
    cfg.write_text('[run]\nsteps = 30\n[env]\nepisode_length = 20\n[agent]\nlearning_starts = 10\nbatch_size = 8\n'
                   'eval_every = 0\ncheckpoint_every = 0\n')
    assert main(["train", "--config", str(cfg), "--out", str(out), "--no-progress"]) == 0
    return out


def test_backtest_never_writes_into_a_run_and_needs_force_over_a_backtest(run_dir, tmp_path, capsys):
    before = {p.name: p.read_bytes() for p in run_dir.iterdir()}
    assert main(["backtest", str(run_dir), "--out", str(run_dir), "--no-html"]) == 2
    assert "holds a run directory" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in run_dir.iterdir()} == before  # nothing touched
    bt = tmp_path / "bt"
    assert main(["backtest", "equal-weight", "--out", str(bt), "--no-html"]) == 0
    assert output_kind(bt) == "backtest"
    assert main(["backtest", "equal-weight", "--out", str(bt), "--no-html"]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["backtest", "equal-weight", "--out", str(bt), "--no-html", "--force"]) == 0
    assert main(["train", "--out", str(bt), *FAST]) == 2  # a backtest directory is not a run
    assert "holds a backtest directory" in capsys.readouterr().err
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match=r"files of another kind \(notes.txt\)"):
        check_output_dir(other, "compare", force=True)
    for n in range(4):
        (other / f"f{n}").mkdir()
    with pytest.raises(ValueError, match=r"files of another kind \(f0/, f1/, f2/ and 2 more\)"):
        check_output_dir(other, "compare")
    stack = tmp_path / "stack"  # the folder of a --seeds stack: named as such
    for s in (0, 3):
        (stack / f"s{s}").mkdir(parents=True)
        (stack / f"s{s}" / "config.toml").write_text('[run]\nsteps = 5\n')
    with pytest.raises(ValueError, match=r"holds the folder of a --seeds stack \(its runs s0/, s3/\)"):
        check_output_dir(stack, "sweep")


@pytest.mark.parametrize("toml,needle", [
    ("[agnet]\nfamily = 'plain'\n", "unknown table(s) [agnet]"),
    ("[agent]\nlr = 'fast'\n", "lr = 'fast' has the wrong type"),
    ("[agent]\nhidden = [4, 'x']\n", "hidden"),
    ("[env]\nwindw = 16\n", "unexpected keyword argument 'windw'"),
    ("[run]\nsteps = -5\n", "steps must be a positive integer"),
    ("[run]\nstep = 5\n", "unknown [run] option(s) ['step']"),
])
def test_bad_configs_are_one_line_errors_and_leave_nothing(tmp_path, capsys, toml, needle):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(toml)
    out = tmp_path / "run"
    assert main(["train", "--config", str(cfg), "--out", str(out), *FAST]) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_steps_and_resume_arguments_are_checked(run_dir, tmp_path, capsys):
    for steps in ("0", "-3"):
        assert main(["train", "--steps", steps, "--out", str(tmp_path / "x")]) == 2
        assert "--steps must be a positive" in capsys.readouterr().err
        assert not (tmp_path / "x").exists()
    assert main(["train", "--out", str(run_dir), "--resume", "--agent", "exact"]) == 2
    assert "--agent cannot change it" in capsys.readouterr().err
    assert main(["train", "--out", str(run_dir), "--resume", "--steps", "10"]) == 2
    assert "below the 30 steps" in capsys.readouterr().err
    assert main(["train", "--out", str(run_dir), *FAST]) == 2  # not without --resume
    assert "already holds a run" in capsys.readouterr().err


def test_compare_checks_every_run_before_backtesting(run_dir, tmp_path, capsys):
    assert main(["compare", str(run_dir), str(tmp_path / "nope"), "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert "nope" in err and "Traceback" not in err
    assert not (tmp_path / "c").exists()


def _planted_store(tmp_path):
    """A data directory (not ./data) holding the planted market as dataset 'pm'."""
    from eqtrade.data.synthetic import planted_market

    csv = tmp_path / "p.csv"
    planted_market(3, seed=2).to_csv(csv, index_label="date")
    store = tmp_path / "store"
    assert main(["data", "import", str(csv), "--name", "pm", "--data-dir", str(store)]) == 0
    return store


def test_data_dir_is_used_by_train(tmp_path, capsys):
    store = _planted_store(tmp_path)
    out = tmp_path / "run"
    tiny = tmp_path / "tiny.toml"  # a budget that trains: learning_starts below --steps, no evaluations
    tiny.write_text("[agent]\nlearning_starts = 10\nbatch_size = 8\neval_every = 0\ncheckpoint_every = 0\n")
    assert main(["train", "--config", str(tiny), "--data", "pm", "--data-dir", str(store), "--out", str(out), *FAST,
                 "--no-progress"]) == 0
    assert 'data_dir = "' in (out / "config.toml").read_text()
    assert main(["train", "--config", str(tiny), "--data", "pm", "--out", str(tmp_path / "r2"), *FAST]) == 2  # not in ./data
    assert not (tmp_path / "r2").exists()


def test_data_dir_is_used_by_backtest_and_compare(tmp_path, capsys):
    store = _planted_store(tmp_path)
    assert main(["backtest", "equal-weight", "--data", "pm", "--data-dir", str(store), "--no-html",
                 "--out", str(tmp_path / "b")]) == 0
    assert '"P00"' in (tmp_path / "b" / "config.toml").read_text()  # the planted tickers, from the store
    assert main(["backtest", "equal-weight", "--data", "pm", "--out", str(tmp_path / "c")]) == 2  # not in ./data


@pytest.mark.parametrize("bad,needle", [
    ("inf", "non-finite price"),
    ("1e308", "--allow-jumps"),
    ("-inf", "non-finite price"),
])
def test_impossible_prices_are_refused_and_an_existing_dataset_is_untouched(tmp_path, capsys, bad, needle):
    store = tmp_path / "store"
    good = tmp_path / "good.csv"
    good.write_text("date,X\n2021-01-04,10\n2021-01-05,10.5\n2021-01-06,10.2\n")
    assert main(["data", "import", str(good), "--name", "d", "--data-dir", str(store)]) == 0
    before = {p.name: p.read_bytes() for p in store.rglob("*") if p.is_file()}
    csv = tmp_path / "bad.csv"
    csv.write_text(f"date,X\n2021-01-04,10\n2021-01-05,{bad}\n2021-01-06,10.2\n")
    assert main(["data", "import", str(csv), "--name", "d", "--force", "--data-dir", str(store)]) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err
    assert {p.name: p.read_bytes() for p in store.rglob("*") if p.is_file()} == before


def test_absurd_jumps_need_allow_jumps_and_stay_allowed_on_load(tmp_path, capsys):
    from eqtrade.data import load_prices

    csv = tmp_path / "j.csv"
    csv.write_text("date,X\n2021-01-04,10\n2021-01-05,2000\n2021-01-06,2010\n")  # x200 in a day
    store = tmp_path / "s"
    assert main(["data", "import", str(csv), "--name", "j", "--data-dir", str(store)]) == 2
    assert "x200" in capsys.readouterr().err
    assert main(["data", "import", str(csv), "--name", "j", "--data-dir", str(store), "--allow-jumps"]) == 0
    assert load_prices(source="j", data_dir=store)["X"].iloc[1] == 2000


def test_unsorted_dates_are_sorted_with_a_printed_warning(tmp_path, capsys):
    csv = tmp_path / "u.csv"
    csv.write_text("date,X\n2021-01-05,10.5\n2021-01-04,10\n2021-01-06,10.2\n")
    assert main(["data", "import", str(csv), "--name", "u", "--data-dir", str(tmp_path / "s")]) == 0
    assert "rows were not in date order; sorted by date" in capsys.readouterr().out


def test_progress_in_a_log_file_is_one_line_per_evaluation(tmp_path):
    import subprocess
    import sys

    cfg = tmp_path / "t.toml"
    # a 2-year train split (each evaluation also rolls the train split out: the 15-year default takes 4 s a time)
    cfg.write_text('[run]\nsteps = 60\n[env]\nepisode_length = 20\nsplit = ["2013-01-01", "2014-12-31"]\n[agent]\n'
                   'learning_starts = 10\nbatch_size = 8\neval_every = 20\ncheckpoint_every = 0\n')
    out = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "eqtrade.cli", "train", "--config", str(cfg), "--out", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("step ")]
    assert [ln.split()[1] for ln in lines] == ["20/60", "40/60", "60/60"], r.stderr
    assert "valid Sharpe" in lines[-1] and "steps/s" in lines[-1] and "\r" not in r.stderr
    # the time left from the speed since updates began (step 10): estimated at 20 and 40, none at the end
    assert all("min left" in ln for ln in lines[:2]) and "min left" not in lines[-1], r.stderr
    assert "done, 60 steps" in r.stderr
    header = (out / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"eval_return", "eval_sharpe", "eval_turnover", "train_sharpe", "best_eval_return", "critic_loss",
            "alpha"} <= set(header)
    first = pd.read_csv(out / "metrics.csv").iloc[0]
    assert first["step"] == 20 and "eval_return" in first.index  # the same columns from the first row


def test_the_time_left_waits_for_the_updates_to_start(capsys):
    """Before updates begin (random actions run many times faster) a progress line names the step
    they begin at instead of a time left; after, the time left is at the speed since they began."""
    from eqtrade.agents.callbacks import progress_line

    row = {"step": 200, "eval_return": 0.1}
    progress_line(row, 1000, 50.0, (), runs=3, learning_speed=None, learning_starts=500)
    progress_line(row, 1000, 50.0, (), runs=3, learning_speed=10.0, learning_starts=100)
    first, second = capsys.readouterr().err.splitlines()
    assert "150 steps/s over 3 runs (random actions until step 500: time left estimated once updates run)" in first
    assert "150 steps/s over 3 runs, 1.3 min left" in second  # 800 steps at 10 steps/s


def test_shipped_strategies_resolve_by_bare_name_from_any_directory(tmp_path, monkeypatch, capsys):
    from eqtrade import strategies
    from eqtrade.strategies import load_toml

    monkeypatch.chdir(tmp_path)  # outside the repository: no strategies/ here
    assert {"sac-relaxed", "baseline-equal-weight"} <= set(strategies.names())
    assert load_toml("sac-relaxed")["agent"]["family"] == "relaxed"
    assert load_toml("sac-relaxed.toml") == load_toml("sac-relaxed")
    assert main(["backtest", "baseline-equal-weight", "--split", "valid", "--no-html", "--out", str(tmp_path / "b")]) == 0
    assert main(["train", "--config", "sac-nope", "--out", str(tmp_path / "r")]) == 2
    assert "no shipped strategy of that name" in capsys.readouterr().err


def test_small_messages_say_the_right_thing(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and "eqtrade 0." in capsys.readouterr().out
    assert main(["backtest", "equal-weight", "--split", "2019:2020:x", "--out", str(tmp_path / "a")]) == 2
    assert main(["backtest", "equal-weight", "--split", "tset", "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "START:END" in err and "(start, end) pair" not in err
    csv = tmp_path / "p.csv"
    csv.write_text("date,X,Y\n" + "\n".join(f"2019-{m:02d}-{d:02d},{10 + d},{20 + m}" for m in range(1, 13)
                                            for d in range(1, 29)) + "\n")
    assert main(["data", "import", str(csv), "--name", "xy", "--data-dir", str(tmp_path / "s")]) == 0
    capsys.readouterr()
    assert main(["backtest", "equal-weight", "--data", "xy", "--data-dir", str(tmp_path / "s"),
                 "--split", "2019-03-01:2019-12-31", "--no-html", "--out", str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    assert "equal weight (daily)" in out and "survivorship" not in out  # imported data: no bundled-stock note


@pytest.mark.parametrize("split", ["2019-01-01:2019-01-02", "2019-01-05:2019-01-06", "1985-01-01:1989-01-01"])
def test_splits_with_too_few_days_are_one_line_errors(tmp_path, capsys, split):
    assert main(["backtest", "equal-weight", "--split", split, "--no-html", "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "trading day(s)" in err and "Traceback" not in err and not (tmp_path / "b").exists()


def test_a_window_longer_than_the_history_is_a_one_line_error(tmp_path, capsys):
    assert main(["backtest", "equal-weight", "--data", "factor-etfs", "--split", "2014-01-01:2014-02-01",
                 "--no-html", "--out", str(tmp_path / "b")]) == 2
    assert "window 32 is longer than the history" in capsys.readouterr().err


def test_a_file_without_a_date_column_says_so(tmp_path, capsys):
    csv = tmp_path / "n.csv"
    csv.write_text("A,B\n10,20\n11,21\n12,22\n")
    assert main(["data", "import", str(csv), "--name", "n", "--data-dir", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert "no date column" in err and "duplicate" not in err
    ymd = tmp_path / "ymd.csv"
    ymd.write_text("date,A\n20210104,20\n20210105,21\n20210106,22\n")  # YYYYMMDD numbers are dates
    assert main(["data", "import", str(ymd), "--name", "ymd", "--data-dir", str(tmp_path / "s")]) == 0


def test_data_show_of_a_typo_suggests_the_ticker(capsys):
    assert main(["data", "show", "AAPLL"]) == 2
    err = capsys.readouterr().err
    assert "did you mean AAPL?" in err and "source=" not in err


def test_a_per_asset_run_acts_on_another_universe_and_a_flat_one_says_why_not(run_dir, tmp_path, capsys):
    """Zero-shot transfer: the default (per-asset) network trained on the 20 stocks acts on the 5
    factor ETFs; a flat network is tied to its universe (issue 13's first step)."""
    assert main(["backtest", str(run_dir), "--data", "factor-etfs", "--no-html", "--out", str(tmp_path / "b")]) == 0
    w = pd.read_parquet(tmp_path / "b" / "weights.parquet")
    assert list(w.columns) == ["MTUM", "QUAL", "SIZE", "USMV", "VLUE"] and (w.abs().sum(1) <= 1 + 1e-9).all()
    flat = tmp_path / "flat"
    cfg = tmp_path / "flat.toml"
    cfg.write_text('[run]\nsteps = 30\n[env]\nepisode_length = 20\n[agent]\nencoder = { kind = "flat" }\n'
                   'hidden = [8]\nlearning_starts = 10\nbatch_size = 8\neval_every = 0\ncheckpoint_every = 0\n')
    assert main(["train", "--config", str(cfg), "--out", str(flat), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["backtest", str(flat), "--data", "factor-etfs", "--out", str(tmp_path / "c")]) == 2
    assert "flat network" in capsys.readouterr().err and not (tmp_path / "c").exists()


@pytest.mark.parametrize("args,needle", [
    (["--window", "0"], "--window 0 is out of range: it must be in [1, 100000]"),
    (["--boot", "0"], "--boot 0 is out of range: it must be in [1, 100000]"),
    (["--boot", "99999999999"], "--boot 99999999999 is out of range"),
    (["--seed", "-1"], "--seed -1 is out of range"),
    (["--env", "dmc/pendulum-swingup", "--states", "0"], "--states 0 is out of range"),
    (["--env", "dmc/pendulum-swingup", "--break", "0,2"], "--break 2.0 is out of range: it must be in [0, 1]"),
    (["--env", "dmc/pendulum-swingup", "--break", ","], "give at least one break strength"),
    (["--data", "AAPL", "KO", "aapl", "--boot", "5"], "--data AAPL KO aapl: AAPL given more than once; name each ticker once"),
])
def test_symmetry_arguments_are_range_checked(capsys, args, needle):
    assert main(["symmetry", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err


def test_a_negative_obs_noise_names_the_flag_or_key(run_dir, tmp_path, capsys):
    needle = "is out of range: it must be >= 0 (the standard deviation of the Gaussian noise"
    assert main(["backtest", str(run_dir), "--obs-noise", "-1", "--no-html", "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--obs-noise -1.0 " + needle in err[0], err
    assert main(["compare", str(run_dir), "--obs-noise", "0,-1", "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--obs-noise -1.0 " + needle in err[0], err
    cfg = tmp_path / "noise.toml"
    cfg.write_text("[env]\nobs_noise = -1.0\n[agent]\nlearning_starts = 10\neval_every = 0\n")
    assert main(["train", "--config", str(cfg), *FAST, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "[env] obs_noise = -1.0 " + needle in err[0], err
    assert not any((tmp_path / d).exists() for d in ("b", "c", "r"))


@pytest.mark.parametrize("argv, flag", [
    (["train", "--data", ""], "--data"), (["train", "--out", "  "], "--out"),
    (["backtest", ""], "RUN_DIR|STRATEGY"), (["data", "show", ""], "TICKER|DATASET"),
    (["fetch", "--tickers", "AAPL", ""], "--tickers"), (["compare", "runs/a", ""], "RUN_DIR"),
])
def test_an_empty_argument_is_refused_naming_it(argv, flag, tmp_path, monkeypatch, capsys):
    """`--data ""` silently meant the bundled default and `--out ""` the current directory."""
    from eqtrade.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"eqtrade {argv[0]}: error: {flag} is empty: give a value or leave the option out", err
    assert list(tmp_path.iterdir()) == []  # nothing written


@pytest.mark.parametrize("edit, words", [
    (("family = ", 'family = "exact"'), "[agent] family = 'exact', but its checkpoint was trained with 'relaxed'"),
    (("episode_length = 20", "episode_length = 40"), "[env] episode_length = 40, but its checkpoint was trained with 20"),
    (("algo = ", 'algo = "dqn"'), "[run] algo = 'dqn', but its checkpoint is a sac agent"),
])
def test_a_hand_edited_config_is_refused_on_resume(run_dir, tmp_path, capsys, edit, words):
    """Resuming continues the checkpoint's configuration: an edit of config.toml would be ignored while
    the file went on describing the run wrongly. One line, and nothing changes."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    text = (run / "config.toml").read_text()
    old, new = edit
    line = next(ln for ln in text.splitlines() if ln.startswith(old))
    (run / "config.toml").write_text(text.replace(line, new))
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    assert main(["train", "--out", str(run), "--resume", "--steps", "40", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and "restore config.toml" in err and len(err.splitlines()) == 1, err
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    (run / "config.toml").write_text(text)  # as trained: it resumes
    assert main(["train", "--out", str(run), "--resume", "--steps", "40", "--no-progress"]) == 0
    from eqtrade.strategies import load_toml

    assert load_toml(run / "config.toml")["run"]["steps"] == 40  # the file records the budget it trained to


TINY_PORTFOLIO = ('[run]\nenv = "portfolio"\n[env]\nwindow = 8\nsplit = "train"\nmode = "long_short"\n'
                  '[eval_env]\nsplit = "valid"\nfull_period = true\n')


@pytest.mark.parametrize("toml,args,needle", [
    ("", ["--seed", "-1"], "--seed -1 is out of range: it must be in [0, "),
    (TINY_PORTFOLIO, ["--threads", "0"], "--threads must be a positive integer, got 0"),
    ("[run]\nthreads = 0\n", [], "c.toml: [run] threads must be a positive integer, got 0"),
    (TINY_PORTFOLIO, ["--env", "dmc/cartpole-swingup"], "--env dmc/cartpole-swingup: [env] window, split, mode and "
     "[eval_env] split, full_period of "),
    (TINY_PORTFOLIO, ["--env", "trading"], "--env trading: [env] mode of "),
    (b"\x00\xf8\x91binary", [], "not a TOML config (not UTF-8 text: byte 0xf8 at offset 1)"),
    ("[run]\nsteps = 5\n[env\nwindow = 3\n", [], "not valid TOML (Expected ']' at the end of a table declaration "
     "(at line 3, column 5))"),
    ('[env]\nwindow = "eight"\n', [], "window = 'eight' has the wrong type: expected an integer >= 1"),
    ("[env]\ncost_bps = { a = 1 }\n", [], "cost_bps = {'a': 1} has the wrong type: expected a number >= 0"),
    ("[env]\ncost_bps = nan\n", [], "cost_bps = nan is out of range: it must be >= 0"),
    ("[env]\nepisode_length = 0\n", [], "episode_length = 0 is out of range: it must be >= 1"),
    ("[env]\nepisode_length = -3\n", [], "episode_length = -3 is out of range"),
    ("[env]\nvol_window = 0\n", [], "vol_window = 0 is out of range"),
    ("[eval_env]\ncost_bps = inf\n", [], "cost_bps = inf is out of range"),
    ("[agent]\nhidden = [%s]\n" % ", ".join(["4"] * 100_000), [], "[agent] hidden has 100_000 layers: at most 64"),
    ("[agent]\nhidden = [-4]\n", [], "[agent] hidden entry = -4 is out of range: it must be in [1, 65536]"),
    ("[agent]\nhidden = [0]\n", [], "[agent] hidden entry = 0 is out of range"),
])
def test_bad_train_flags_and_env_options_are_named_in_one_line(tmp_path, capsys, toml, args, needle):
    cfg = tmp_path / "c.toml"
    cfg.write_bytes(toml if isinstance(toml, bytes) else toml.encode())
    out = tmp_path / "run"
    assert main(["train", "--config", str(cfg), "--out", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


def test_resume_of_what_is_not_a_run_says_nothing_to_resume(run_dir, tmp_path, capsys):
    empty = tmp_path / "notrun"
    empty.mkdir()
    assert main(["train", "--config", str(run_dir / "config.toml"), "--out", str(empty), "--resume"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"nothing to resume: {empty}/config.toml does not exist" in err[0], err
    assert "leave out --resume" in err[0]
    bt = tmp_path / "bt"
    assert main(["backtest", "equal-weight", "--out", str(bt), "--no-html"]) == 0
    capsys.readouterr()
    assert main(["train", "--out", str(bt), "--resume"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"nothing to resume: --out {bt} holds a backtest directory, not a training run" in err[0]


def test_agent_load_takes_a_run_directory(run_dir, tmp_path):
    from eqtrade.agents import SAC
    from eqtrade.agents.checkpoint import CheckpointError

    assert SAC.load(run_dir).step == SAC.load(run_dir / "checkpoint.pt").step == 30
    assert SAC.load_policy(run_dir, SAC.load(run_dir, build_env=True).eval_env).step == 30
    with pytest.raises(CheckpointError, match=r"is a directory, not a checkpoint file; pass a checkpoint file "
                                              r"\(RUN/checkpoint.pt or RUN/best.pt\)") as e:
        SAC.load(tmp_path)
    assert "retrain" not in str(e.value)
