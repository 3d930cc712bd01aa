"""Backtests: metrics by hand, baselines by pandas, engine == env rollout, offline tearsheet,
reports and commands."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from eqtrade.agents import EnvSpec, SAC, SACConfig
from eqtrade.backtest import (
    baseline,
    decision_days,
    metrics,
    rollout,
    weights_backtest,
    write_report,
)
from eqtrade.cli import main
from eqtrade.data import load_bundled, load_prices
from eqtrade.envs import PortfolioEnv

SPLIT = ("2019-01-01", "2020-12-31")


@pytest.fixture(scope="module")
def prices():
    return load_prices(["AAPL", "JNJ", "XOM", "KO"], start="2018-06-01", end="2020-12-31")


def test_metrics_equal_a_hand_computation():
    r = pd.Series([0.01, -0.02, 0.015, 0.0, -0.005, 0.03, -0.01, 0.002],
                  index=pd.bdate_range("2021-01-04", periods=8))
    m = metrics(r, turnover=0.25)
    x = r.to_numpy()
    wealth = np.cumprod(1 + x)
    assert m["Total return"] == pytest.approx(wealth[-1] - 1, rel=1e-12)
    assert m["CAGR"] == pytest.approx(wealth[-1] ** (252 / 8) - 1, rel=1e-9)
    assert m["Sharpe"] == pytest.approx(x.mean() / x.std(ddof=1) * math.sqrt(252), rel=1e-9)
    downside = math.sqrt((x[x < 0] ** 2).sum() / len(x))
    assert m["Sortino"] == pytest.approx(x.mean() / downside * math.sqrt(252), rel=1e-9)
    assert m["Volatility"] == pytest.approx(x.std(ddof=1) * math.sqrt(252), rel=1e-9)
    dd = (wealth / np.maximum.accumulate(np.concatenate([[1.0], wealth]))[1:] - 1).min()
    assert m["Max drawdown"] == pytest.approx(dd, rel=1e-9)
    assert m["Calmar"] == pytest.approx(m["CAGR"] / abs(dd), rel=1e-9)
    assert m["Hit rate"] == pytest.approx(4 / 8) and m["Turnover"] == 0.25


def test_baselines_equal_a_direct_pandas_computation(prices):
    days = decision_days(prices, SPLIT, window=16)
    R = prices.pct_change()
    nxt = prices.index[prices.index.get_indexer(days) + 1]
    ew = baseline("equal-weight", prices, SPLIT, window=16, cost_bps=0)
    pd.testing.assert_series_equal(ew.returns, R.loc[nxt].mean(axis=1), check_names=False, rtol=1e-12)
    bh = baseline("buy-and-hold", prices, SPLIT, window=16, cost_bps=0)
    growth = (prices.loc[nxt] / prices.loc[days[0]]).mean(axis=1)  # 1/N of each asset held from day one
    np.testing.assert_allclose((1 + bh.returns).cumprod().to_numpy(), growth.to_numpy(), rtol=1e-12)
    sp = baseline("sp500", prices, SPLIT, window=16)
    idx = load_bundled("sp500-index")["SP500"]
    np.testing.assert_allclose(sp.returns.to_numpy(), (idx / idx.shift(1) - 1).loc[nxt].to_numpy(), rtol=1e-12)
    assert (baseline("cash", prices, SPLIT, window=16).returns == 0).all()


@pytest.mark.parametrize("cost_model", ["target", "drift"])
def test_vectorised_engine_agrees_with_the_env_rollout(prices, cost_model):
    env = PortfolioEnv(prices=prices, window=16, split=SPLIT, cost_bps=15, full_period=True, cost_model=cost_model)
    rng = np.random.default_rng(0)
    acts = iter(rng.uniform(-1, 1, size=(1000, 4)))
    bt = rollout(lambda o: next(acts), env)
    vec = weights_backtest(prices, bt.weights, cost_bps=15, cost_model=cost_model)
    pd.testing.assert_series_equal(bt.returns, vec.returns, check_names=False, rtol=1e-10, atol=1e-14)
    assert len(bt.returns) == env.market.n_days
    np.testing.assert_allclose(bt.traded, vec.traded, rtol=1e-10)  # the same trades charged
    assert bt.turnover == pytest.approx(vec.turnover)


def test_drift_costs_of_the_baselines_equal_a_hand_computation(prices):
    """What a broker charges: equal weight pays for rebalancing its drift every day, buy & hold
    pays only on day one (issue 12: the 'target' model had it the other way round)."""
    c = 25 / 1e4
    days = decision_days(prices, SPLIT, window=16)
    R = prices.pct_change().loc[prices.index[prices.index.get_indexer(days) + 1]].to_numpy()
    n = prices.shape[1]
    ew = baseline("equal-weight", prices, SPLIT, window=16, cost_bps=25, cost_model="drift")
    held, expected, traded = np.zeros(n), [], []
    for r in R:  # by hand: trade from the drifted weights back to 1/N, then earn the day
        t = np.abs(1 / n - held).sum()
        g = 1 + r.mean() - c * t
        expected.append(g - 1)
        traded.append(t)
        held = (1 / n) * (1 + r) / (1 + r.mean())  # drifted weights (costs are paid in cash)
    np.testing.assert_allclose(ew.returns.to_numpy(), expected, rtol=1e-12)
    assert traded[0] == pytest.approx(1.0) and 0.003 < np.mean(traded[1:]) < 0.05
    assert ew.turnover == pytest.approx(np.mean(traded))
    bh = baseline("buy-and-hold", prices, SPLIT, window=16, cost_bps=25, cost_model="drift")
    assert bh.traded[0] == pytest.approx(1.0) and np.abs(bh.traded[1:]).max() < 1e-12
    growth = (prices.loc[prices.index[prices.index.get_indexer(days) + 1]] / prices.loc[days[0]]).mean(axis=1)
    g = growth.to_numpy()  # day one pays c on the whole book, then the positions just drift
    np.testing.assert_allclose((1 + bh.returns).cumprod().to_numpy(), g * (1 - c / g[0]), rtol=1e-10)


def test_backtests_charge_drift_costs_by_default(trained_runs, tmp_path):
    from eqtrade.backtest import backtest_run

    bts, ctx = backtest_run(trained_runs[0], ("2019-01-01", "2020-12-31"))
    assert ctx["cost_model"] == "drift"
    names = {b.name: b for b in bts}
    assert names["buy & hold EW"].turnover < names["equal weight (daily)"].turnover
    assert np.abs(names["buy & hold EW"].traded[1:]).max() < 1e-12


def test_report_writes_an_offline_tearsheet_with_metrics_and_benchmark(prices, tmp_path, monkeypatch):
    import socket

    def no_network(*a, **k):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    bts = [baseline(k, prices, SPLIT, 16) for k in ("equal-weight", "sp500", "cash")]
    ctx = {"split": "2019-2020", "cost_bps": 10.0, "cost_model": "target", "obs_noise": 0.0, "kind": "strategy"}
    table = write_report(bts, ctx, tmp_path / "bt")
    files = {p.name for p in (tmp_path / "bt").iterdir()}
    assert {"returns.parquet", "weights.parquet", "metrics.csv", "metrics.md", "tearsheet.html", "equity.png",
            "config.toml"} <= files
    html = (tmp_path / "bt" / "tearsheet.html").read_text()
    assert "Sharpe" in html and "Benchmark" in html and "S&amp;P 500" in html
    assert f"{table.loc['equal weight (daily)', 'Sharpe']:.2f}" in html
    assert 'strategy' in (tmp_path / "bt" / "config.toml").read_text()


@pytest.fixture(scope="module")
def trained_runs(tmp_path_factory, prices):
    """Two tiny SAC runs (relaxed, two seeds) saved like `eqtrade train` saves them."""
    root = tmp_path_factory.mktemp("runs")
    dirs = []
    for seed, fam in [(0, "relaxed"), (1, "relaxed"), (0, "plain")]:
        spec = EnvSpec("portfolio", dict(prices=prices, window=16, split=("2018-06-01", "2018-12-31"), episode_length=40),
                       dict(full_period=True))
        agent = SAC(spec.make(), SACConfig(family=fam, seed=seed, hidden=(16, 16), batch_size=16, learning_starts=50,
                                           eval_every=0, checkpoint_every=0), spec)
        agent.learn(80, progress=False)
        d = root / f"{fam}-{seed}"
        d.mkdir()
        agent.save(d / "checkpoint.pt")
        dirs.append(d)
    return dirs


def test_backtest_and_compare_commands(trained_runs, tmp_path, capsys):
    out = tmp_path / "bt"
    assert main(["backtest", str(trained_runs[0]), "--split", "2019-01-01:2020-12-31", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "SAC relaxed" in text and "equal weight (daily)" in text and "S&P 500" in text
    assert (out / "tearsheet.html").exists() and "run" in (out / "config.toml").read_text()
    w = pd.read_parquet(out / "weights.parquet")
    assert w.shape[1] == 4 and (w.abs().sum(1) <= 1 + 1e-9).all()
    assert main(["backtest", str(trained_runs[0]), "--split", "2019-01-01:2020-12-31", "--out", str(tmp_path / "n"),
                 "--obs-noise", "0.05", "--no-html"]) == 0
    noisy = pd.read_parquet(tmp_path / "n" / "returns.parquet")["SAC relaxed/flat/exact"]
    clean = pd.read_parquet(out / "returns.parquet")["SAC relaxed/flat/exact"]
    assert not noisy.equals(clean)
    assert main(["compare", *map(str, trained_runs), "--split", "2019-01-01:2020-12-31", "--obs-noise", "0,0.05",
                 "--out", str(tmp_path / "cmp")]) == 0
    summary = pd.read_csv(tmp_path / "cmp" / "summary.csv")
    rel = summary[(summary["family"] == "relaxed/flat/exact") & (summary["obs_noise"] == 0)].iloc[0]
    assert rel["seeds"] == 2 and np.isfinite(rel["Sharpe ±95%"])
    assert set(summary["obs_noise"]) == {0.0, 0.05} and (tmp_path / "cmp" / "equity.png").exists()
    assert any(summary["family"].str.startswith("baseline: "))


def test_strategy_files_and_bad_targets(tmp_path, capsys):
    assert main(["backtest", "strategies/baseline-equal-weight.toml", "--split", "test", "--out", str(tmp_path / "s"),
                 "--no-html"]) == 0
    assert "equal weight (daily)" in capsys.readouterr().out
    assert main(["backtest", "nonsense", "--out", str(tmp_path / "x")]) == 2
    assert "neither a run directory" in capsys.readouterr().err


def test_backtest_uses_the_validation_selected_checkpoint_and_says_so(prices, tmp_path, capsys):
    spec = EnvSpec("portfolio", dict(prices=prices, window=16, split=("2018-06-01", "2018-12-31"), episode_length=40),
                   dict(split=("2019-01-01", "2019-06-30"), full_period=True))
    agent = SAC(spec.make(), SACConfig(family="plain", seed=0, hidden=(16, 16), batch_size=16, learning_starts=50,
                                       eval_every=60, checkpoint_every=0), spec)
    run = tmp_path / "run"
    run.mkdir()
    agent.learn(240, out_dir=run, progress=False)
    evals = [m for m in agent.metrics if "eval_return" in m]
    best = max(evals, key=lambda m: m["eval_return"])
    assert evals[-1]["best_eval_return"] == best["eval_return"]
    from eqtrade.agents import Agent
    from eqtrade.backtest.report import run_checkpoint

    assert Agent.load(run / "best.pt").step == best["step"]  # best.pt holds the best evaluation's policy
    assert run_checkpoint(run) == (run / "best.pt", "best")
    assert run_checkpoint(run, "last") == (run / "checkpoint.pt", "last")
    for which in ("best", "last"):
        assert main(["backtest", str(run), "--split", "2019-07-01:2020-12-31", "--checkpoint", which, "--no-html",
                     "--out", str(tmp_path / which)]) == 0
        assert f"policy: {which} checkpoint" in capsys.readouterr().out
    assert main(["compare", str(run), "--split", "2019-07-01:2020-12-31", "--out", str(tmp_path / "cmp")]) == 0
    summary = pd.read_csv(tmp_path / "cmp" / "summary.csv")
    assert {"Turnover", "train Sharpe", "valid Sharpe"} <= set(summary.columns)
    assert main(["compare", str(run), str(tmp_path / "missing"), "--out", str(tmp_path / "c2")]) == 2
    assert "missing" in capsys.readouterr().err


def test_benchmark_is_labelled_and_a_user_series_can_replace_it(prices, tmp_path, monkeypatch, capsys):
    from eqtrade.backtest.engine import SP500_LABEL

    default = baseline("sp500", prices, SPLIT, window=16)
    assert default.name == SP500_LABEL and "excl. dividends" in default.name
    tr = load_bundled("sp500-index")["SP500"].rename("TR") * 1.5  # any series: named after it
    custom = baseline("sp500", prices, SPLIT, window=16, benchmark=tr)
    assert custom.name == "benchmark TR"
    np.testing.assert_allclose(custom.returns.to_numpy(), default.returns.to_numpy(), rtol=1e-9, atol=1e-15)
    with pytest.raises(ValueError, match="does not cover"):
        baseline("sp500", prices, SPLIT, window=16, benchmark=tr.loc["2020-01-01":])
    # through the CLI: a one-column imported dataset as the benchmark
    csv = tmp_path / "tr.csv"
    (tr.loc["2018-01-01":] * 1.01).rename("SPYTR").to_frame().to_csv(csv, index_label="date")
    monkeypatch.setenv("EQTRADE_DATA", str(tmp_path / "d"))
    assert main(["data", "import", str(csv), "--name", "spytr"]) == 0
    assert main(["backtest", "equal-weight", "--split", "2019-01-01:2020-12-31", "--benchmark", "spytr",
                 "--no-html", "--out", str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    assert "benchmark spytr" in out and SP500_LABEL not in out
    assert main(["backtest", "equal-weight", "--benchmark", "nope", "--out", str(tmp_path / "c")]) == 2
    assert "no benchmark named 'nope'" in capsys.readouterr().err


def test_risk_free_rate_pays_cash_and_sharpe_is_of_excess_returns(prices, tmp_path, capsys):
    from eqtrade.backtest.engine import with_cash_interest
    from eqtrade.backtest.metrics import daily_rate

    d = daily_rate(0.03)
    assert (1 + d) ** 252 == pytest.approx(1.03)
    cash = with_cash_interest(baseline("cash", prices, SPLIT, window=16), 0.03)
    np.testing.assert_allclose(cash.returns.to_numpy(), d)
    ew = baseline("equal-weight", prices, SPLIT, window=16, cost_model="drift")
    assert with_cash_interest(ew, 0.03).returns.equals(ew.returns.rename(ew.name))  # fully invested: no cash
    half = weights_backtest(prices, ew.weights * 0.5, 10, "drift", "half")
    np.testing.assert_allclose(with_cash_interest(half, 0.03).returns - half.returns, 0.5 * d, rtol=1e-9)
    r = ew.returns
    by_hand = (r - d).mean() / (r - d).std() * math.sqrt(252)
    assert metrics(r, rf=0.03)["Sharpe"] == pytest.approx(by_hand, rel=1e-6)
    assert metrics(r, rf=0.03)["Sharpe"] < metrics(r)["Sharpe"]
    assert main(["backtest", "equal-weight", "--split", "2019-01-01:2020-12-31", "--rf", "0.02", "--no-html",
                 "--out", str(tmp_path / "b")]) == 0
    assert "risk-free rate 2.00%/yr" in capsys.readouterr().out
    assert "risk-free rate 2.00%/yr" in (tmp_path / "b" / "metrics.md").read_text()
    assert main(["backtest", "equal-weight", "--rf", "2", "--out", str(tmp_path / "c")]) == 2
    assert "--rf 2 is not an annual rate" in capsys.readouterr().err


def test_risk_free_rate_from_a_cash_like_price_series(prices, tmp_path, capsys, monkeypatch):
    from eqtrade.backtest.engine import with_cash_interest
    from eqtrade.backtest.metrics import rf_daily

    days = pd.bdate_range("2018-06-01", "2021-01-31")
    bill = pd.Series(100 * (1 + 0.0001) ** np.arange(len(days)), index=days, name="BILL")  # 1bp a day
    cash = with_cash_interest(baseline("cash", prices, SPLIT, window=16), bill)
    np.testing.assert_allclose(cash.returns.to_numpy(), rf_daily(bill, cash.returns.index).to_numpy())
    assert 0.0001 <= cash.returns.max() <= 0.0003  # a holiday of the series spreads its move, never invents one
    csv = tmp_path / "bill.csv"
    bill.to_frame().to_csv(csv, index_label="date")
    monkeypatch.setenv("EQTRADE_DATA", str(tmp_path / "d"))
    assert main(["data", "import", str(csv), "--name", "bill"]) == 0
    assert main(["backtest", "cash", "--split", "2019-01-01:2020-12-31", "--rf", "bill", "--no-html",
                 "--out", str(tmp_path / "b")]) == 0
    assert "risk-free rate bill (daily returns of that series)" in capsys.readouterr().out
    assert main(["backtest", "cash", "--rf", "nope", "--out", str(tmp_path / "c")]) == 2
    assert "neither an annual rate" in capsys.readouterr().err


def _err_line(capsys) -> str:
    """What the user sees on stderr: exactly one line (no traceback)."""
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.fixture()
def run_copy(trained_runs, tmp_path):
    """A copy of a trained run with a best.pt and a config.toml, to damage."""
    import shutil

    d = tmp_path / "run"
    shutil.copytree(trained_runs[0], d)
    shutil.copy(d / "checkpoint.pt", d / "best.pt")
    (d / "config.toml").write_text('[run]\nalgo = "sac"\nsteps = 80\n\n[agent]\nfamily = "relaxed"\n')
    return d


@pytest.mark.parametrize("damage", ["truncated", "empty"])
def test_a_damaged_checkpoint_is_one_line_naming_the_file_in_every_command(run_copy, tmp_path, capsys, damage):
    d, split = run_copy, ["--split", "2019-01-01:2019-06-30"]
    what = "is empty" if damage == "empty" else "is not a readable eqtrade checkpoint (truncated"
    good = {f: (d / f).read_bytes() for f in ("best.pt", "checkpoint.pt")}

    def spoil(name):
        for f, data in good.items():
            (d / f).write_bytes(data[: len(data) // 2] if damage == "truncated" and f == name else
                                b"" if f == name else data)

    spoil("best.pt")
    for argv in (["backtest", str(d), *split, "--checkpoint", "best", "--out", str(tmp_path / "b")],
                 ["compare", str(d), *split, "--out", str(tmp_path / "c")]):
        assert main(argv) == 2
        err = _err_line(capsys)
        assert f"{d / 'best.pt'} {what}" in err and "use --checkpoint last" in err
        assert "PytorchStreamReader" not in err and "Errno" not in err
    spoil("checkpoint.pt")
    assert main(["backtest", str(d), *split, "--checkpoint", "last", "--out", str(tmp_path / "l")]) == 2
    err = _err_line(capsys)
    assert f"{d / 'checkpoint.pt'} {what}" in err and "best.pt looks intact (--checkpoint best)" in err
    for extra in ([], ["--steps", "500"]):  # both ways a resume reads checkpoint.pt
        assert main(["train", "--resume", "--out", str(d), "--no-progress", *extra]) == 2
        err = _err_line(capsys)
        assert f"cannot resume: {d / 'checkpoint.pt'} {what}" in err
        assert "--config" in err and "--out NEW_DIR" in err and f"eqtrade backtest {d} --checkpoint best" in err


def test_a_half_written_run_directory_says_what_is_missing_or_wrong(run_copy, tmp_path, capsys):
    only_config = tmp_path / "stopped"
    only_config.mkdir()
    (only_config / "config.toml").write_text((run_copy / "config.toml").read_text())
    assert main(["backtest", str(only_config), "--out", str(tmp_path / "o1")]) == 2
    err = _err_line(capsys)
    assert "run directory without checkpoint.pt (it holds config.toml" in err and "Errno" not in err
    assert f"eqtrade train --config {only_config}/config.toml --out {only_config}" in err
    (run_copy / "checkpoint.pt").unlink()
    (run_copy / "checkpoint.pt").mkdir()
    assert main(["backtest", str(run_copy), "--out", str(tmp_path / "o2")]) == 2
    assert "its checkpoint.pt is a directory, not a checkpoint file" in _err_line(capsys)
    other = tmp_path / "notes"
    other.mkdir()
    (other / "todo.txt").write_text("x")
    assert main(["backtest", str(other), "--out", str(tmp_path / "o3")]) == 2
    assert f"{other} is a directory but not a run directory" in _err_line(capsys)


def test_best_pt_that_is_a_directory_is_named(run_copy, tmp_path, capsys):
    (run_copy / "best.pt").unlink()
    (run_copy / "best.pt").mkdir()
    assert main(["backtest", str(run_copy), "--split", "2019-01-01:2019-06-30", "--out", str(tmp_path / "o")]) == 2
    err = _err_line(capsys)
    assert "best.pt is a directory, not a checkpoint file; use --checkpoint last" in err and "Errno" not in err


def test_open_ended_splits_run_to_the_data_and_bad_splits_are_one_line(tmp_path, capsys):
    import tomllib

    from eqtrade.data.market import parse_split, split_range

    assert main(["backtest", "cash", "--split", "2022-06-01:", "--no-html", "--out", str(tmp_path / "end")]) == 0
    cfg = tomllib.loads((tmp_path / "end" / "config.toml").read_text())["backtest"]
    assert cfg["requested_start"] == "2022-06-01" and cfg["requested_end"] == "end of data"
    # the split's returns are exactly its own days: the first is realised on its first day
    assert cfg["first_date"] == "2022-06-01" and cfg["last_date"] == "2022-12-28" and cfg["notes"] == []
    assert main(["backtest", "cash", "--split", ":1990-03-30", "--no-html", "--out", str(tmp_path / "start")]) == 0
    cfg = tomllib.loads((tmp_path / "start" / "config.toml").read_text())["backtest"]
    assert cfg["requested_start"] == "start of data" and cfg["last_date"] == "1990-03-30"
    assert main(["symmetry", "--data", "AAPL", "--split", "2022-01-01:", "--boot", "2", "--window", "8"]) == 0
    assert "reflection gap of daily returns, 2022-01-01..2022-12-28" in capsys.readouterr().out
    for bad, why in [("foo", "use train, valid, test or START:END"), ("2020-01-01:2019-01-01", "is before its start"),
                     ("2019-13-01:2020-01-01", "month must be in 1..12"), ("NaT:2020-01-01", "'NaT' is not a date")]:
        assert main(["backtest", "cash", f"--split={bad}", "--out", str(tmp_path / "x")]) == 2
        err = _err_line(capsys)
        assert f"--split {bad!r}" in err and why in err and "NaTType" not in err
    assert split_range(parse_split(" 2019-01-01 : "))[0] == pd.Timestamp("2019-01-01")


def test_a_shortened_and_in_sample_backtest_says_so_and_records_it(trained_runs, tmp_path, capsys):
    """The runs' data begin 2018-06-01 and they trained on 2018-06-01..2018-12-31."""
    import tomllib

    assert main(["backtest", str(trained_runs[0]), "--split", "2018-01-01:2019-03-29", "--no-html",
                 "--out", str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    cfg = tomllib.loads((tmp_path / "b" / "config.toml").read_text())["backtest"]
    first = pd.read_parquet(tmp_path / "b" / "returns.parquet").index[0]
    assert cfg["requested_start"] == "2018-01-01" and cfg["first_date"] == f"{first:%Y-%m-%d}" > "2018-06-01"
    short = next(n for n in cfg["notes"] if n.startswith("shortened"))
    assert f"returns start {first:%Y-%m-%d}, not at the requested start 2018-01-01" in short
    assert "no price before 2018-06-01" in short and f"note: {short}" in out
    inside = next(n for n in cfg["notes"] if n.startswith("in-sample"))
    assert f"{first:%Y-%m-%d}..2018-12-31 in its train split" in inside and "--split 2019-01-01:" in inside
    assert f"note: {inside}" in out and inside in (tmp_path / "b" / "metrics.md").read_text()


def test_span_notes_of_a_late_listing_universe_and_an_early_end():
    from eqtrade.backtest.report import in_sample_note, span_notes

    days = pd.bdate_range("2019-01-01", "2019-12-31")
    p = pd.DataFrame({"A": np.linspace(1, 2, len(days)), "B": np.linspace(2, 3, len(days))}, index=days)
    p.loc[:"2019-03-31"] = np.nan  # a universe that lists in April: no price at all before
    p = p.dropna(how="all")
    info, notes = span_notes(p, ("2019-01-01", "2020-06-30"), window=5)
    assert info["requested_start"] == "2019-01-01" and info["first_date"] == f"{p.index[6]:%Y-%m-%d}"
    assert len(notes) == 2 and "no price before 2019-04-01" in notes[0]
    assert "not at the requested end 2020-06-30" in notes[1] and info["last_date"] == "2019-12-31"
    assert span_notes(p, ("2019-04-02", ""), window=1)[1] == []  # open end, one day of history before the start
    spec = EnvSpec("portfolio", dict(split=("2018-06-01", "2018-12-31")), dict(split=("2019-01-01", "2019-03-29")))
    assert in_sample_note(spec, "2019-04-01", "2019-12-31") is None
    assert "2019-03-01..2019-03-29 in its validation (model selection) split" in in_sample_note(spec, "2019-03-01",
                                                                                              "2019-12-31")


def test_compare_refuses_a_run_given_twice(trained_runs, tmp_path, capsys):
    r = str(trained_runs[0])
    for again in (r, f"{trained_runs[0]}/../{trained_runs[0].name}/"):
        assert main(["compare", r, again, "--out", str(tmp_path / "c")]) == 2
        assert f"run {again} is given twice" in _err_line(capsys)
    assert not (tmp_path / "c").exists()


def test_compare_names_a_missing_run_before_a_taken_out(trained_runs, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "backtests" / "compare-test").mkdir(parents=True)
    (tmp_path / "backtests" / "compare-test" / "mine.txt").write_text("not a comparison")
    assert main(["compare", str(trained_runs[0]), "runs/nope"]) == 2
    err = _err_line(capsys)
    assert "run runs/nope does not exist" in err and "--out" not in err
    assert main(["compare", str(trained_runs[0]), str(tmp_path / "backtests")]) == 2
    assert "backtests is not a run directory (no checkpoint.pt file)" in _err_line(capsys)


def test_a_baseline_file_is_checked_key_by_key(tmp_path, capsys):
    """A strategy file's [baseline] table: its kind, unknown keys and the ranges of its numbers,
    each a one-line error naming the file, the key and the value, before any data is read."""
    cases = [
        ('kind = "lottery"', "was read as a baseline strategy, but its [baseline] kind = 'lottery' is not a baseline; "
                             "kind is one of equal-weight, buy-and-hold, sp500, cash"),
        ('prices = "sp500-20"', "its [baseline] has no kind"),
        ('kind = "equal-weight"\nfoo = 1', "unknown [baseline] key(s) foo; known: kind, prices, tickers, window"),
        ('kind = "equal-weight"\ncost_bps = -10.0', "[baseline] cost_bps = -10.0 is out of range: it must be in [0, "),
        ('kind = "equal-weight"\ncost_bps = nan', "[baseline] cost_bps = nan is out of range"),
        ('kind = "equal-weight"\nwindow = -5', "[baseline] window = -5 is out of range: it must be in [1, "),
        ('kind = "cash"\nwindow = 0', "[baseline] window = 0 is out of range"),
        ('kind = "cash"\nwindow = 3.5', "[baseline] window = 3.5 must be a whole number of days"),
    ]
    for i, (body, words) in enumerate(cases):
        f = tmp_path / f"bl{i}.toml"
        f.write_text(f"[baseline]\n{body}\n")
        assert main(["backtest", str(f), "--no-html", "--out", str(tmp_path / f"o{i}")]) == 2, body
        err = _err_line(capsys)
        assert str(f) in err and words in err, (body, err)
        assert not (tmp_path / f"o{i}").exists()
    with pytest.raises(ValueError, match=r"cost_bps = -1.0 is out of range"):  # the API's arguments too
        from eqtrade.backtest.report import backtest_strategy

        backtest_strategy("equal-weight", SPLIT, cost_bps=-1.0)


def test_a_short_backtest_notes_its_unreliable_annualised_figures(tmp_path, capsys):
    import tomllib

    from eqtrade.backtest.report import MIN_ANNUAL_DAYS, short_note

    assert main(["backtest", "equal-weight", "--split", "2015-01-01:2015-01-10", "--no-html",
                 "--out", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    cfg = tomllib.loads((tmp_path / "s" / "config.toml").read_text())["backtest"]
    note = next(n for n in cfg["notes"] if n.startswith("short sample"))
    assert "6 daily return(s) (2015-01-02..2015-01-09), fewer than 63" in note and "CAGR, Sharpe" in note
    assert "standard error is about √(252/6) = 6.5" in note
    assert f"note: {note}" in out and note in (tmp_path / "s" / "metrics.md").read_text()
    assert short_note(MIN_ANNUAL_DAYS, "a", "b") is None and short_note(MIN_ANNUAL_DAYS - 1, "a", "b")


def test_compare_refuses_one_run_twice_by_config_or_by_copy(trained_runs, tmp_path, capsys):
    """Two runs of the same config.toml (same seed, same everything), or a copied run without
    one (the same checkpoint bytes), would count one seed as two."""
    import shutil

    from eqtrade.backtest.report import check_runs

    copy = tmp_path / "copy"
    shutil.copytree(trained_runs[0], copy)
    assert main(["compare", str(trained_runs[0]), str(copy), "--out", str(tmp_path / "c")]) == 2
    assert f"runs {trained_runs[0]} and {copy} hold the same checkpoint.pt (a copy of one run)" in _err_line(capsys)
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(trained_runs[0], a)
    shutil.copytree(trained_runs[1], b)
    (a / "config.toml").write_text('[run]\nalgo = "sac"\n\n[agent]\nfamily = "relaxed"\nseed = 0\n')
    (b / "config.toml").write_text('[agent]\nseed = 0\nfamily = "relaxed"\n\n[run]\nalgo = "sac"\n')
    assert main(["compare", str(a), str(b), "--out", str(tmp_path / "c")]) == 2
    assert f"runs {a} and {b} have the same config.toml (seed 0, same everything)" in _err_line(capsys)
    assert not (tmp_path / "c").exists()
    (b / "config.toml").write_text('[run]\nalgo = "sac"\n\n[agent]\nfamily = "relaxed"\nseed = 1\n')
    check_runs([a, b])  # another seed: two runs
    check_runs(trained_runs)  # runs without config.toml, different checkpoints


def test_compare_refuses_an_empty_obs_noise_list(trained_runs, tmp_path, capsys):
    assert main(["compare", str(trained_runs[0]), "--obs-noise", "", "--out", str(tmp_path / "c")]) == 2
    assert "--obs-noise is empty" in _err_line(capsys)  # every empty option: eqtrade.cli's one check
    assert main(["compare", str(trained_runs[0]), "--obs-noise", " , ", "--out", str(tmp_path / "c")]) == 2
    assert "--obs-noise ' , ' gives no noise level" in _err_line(capsys)
    assert not (tmp_path / "c").exists()
    from eqtrade.backtest import compare_runs

    with pytest.raises(ValueError, match="no observation-noise level"):
        compare_runs([trained_runs[0]], SPLIT, obs_noises=())


@pytest.mark.parametrize("cost", [-50.0, float("nan"), 1e6])
def test_the_python_baselines_refuse_a_cost_out_of_range(prices, cost):
    """`baseline(..., cost_bps=-50)` was a 50 bps rebate on every trade, without a word."""
    from eqtrade.backtest.engine import baseline

    with pytest.raises(ValueError, match=r"cost_bps = .* is out of range: it must be in \[0, 10000\]"):
        baseline("equal-weight", prices, "test", cost_bps=cost)


def test_metrics_of_no_finite_returns_say_so():
    """All-NaN returns gave quantstats' "Input data cannot be empty" for a 10-row series."""
    from eqtrade.backtest.metrics import metrics

    idx = pd.bdate_range("2020-01-01", periods=10)
    with pytest.raises(ValueError, match="10 rows, all NaN or not numbers"):
        metrics(pd.Series(np.nan, index=idx))
    with pytest.raises(ValueError, match="no rows"):
        metrics(pd.Series([], dtype=float))
    with pytest.raises(ValueError, match="infinite"):
        metrics(pd.Series([0.01, np.inf], index=idx[:2]))
    assert metrics(pd.Series([0.01, np.nan, -0.005], index=idx[:3]))["Days"] == 2  # NaN days are dropped


def test_backtest_and_compare_print_paired_statistics_against_the_reference(trained_runs, tmp_path, capsys):
    """The paired columns in the terminal, metrics.md, paired.csv and the tearsheet's title; the
    reference's own ΔSharpe is 0; --against another baseline; each family's seeds as one book."""
    from eqtrade.backtest.stats import delta_sharpe

    out = tmp_path / "bt"
    split = "2019-01-01:2020-12-31"
    assert main(["backtest", str(trained_runs[0]), "--split", split, "--out", str(out), "--n-boot", "300"]) == 0
    text = capsys.readouterr().out
    assert "paired against equal weight (daily)" in text and "stationary bootstrap (300 resamples" in text
    paired = pd.read_csv(out / "paired.csv", index_col=0)
    assert {"ΔSharpe", "ΔSharpe lo", "ΔSharpe hi", "JKM p", "IR t", "corr", "Sharpe SE", "PSR", "beta",
            "break-even bps", "gross exposure"} <= set(paired)
    assert paired.loc["equal weight (daily)", "ΔSharpe"] == 0
    assert {"volatility-managed EW", "inverse volatility", "momentum 12-1 (top third)"} <= set(paired.index)
    rets = pd.read_parquet(out / "returns.parquet")
    agent = "SAC relaxed/flat/exact"
    d = delta_sharpe(rets[agent].to_numpy(), rets["equal weight (daily)"].to_numpy(), n_boot=300, seed=0)
    assert paired.loc[agent, "ΔSharpe"] == pytest.approx(d["delta"], abs=1e-12)
    assert paired.loc[agent, "ΔSharpe lo"] == pytest.approx(d["lo"], abs=1e-12)
    assert "Paired against equal weight (daily)" in (out / "metrics.md").read_text()
    assert "ΔSharpe vs equal weight (daily)" in (out / "tearsheet.html").read_text()
    assert main(["backtest", str(trained_runs[0]), "--split", split, "--out", str(tmp_path / "v"), "--no-html",
                 "--against", "volman", "--baselines", "volman", "--n-boot", "300"]) == 0
    assert "paired against volatility-managed EW" in capsys.readouterr().out
    assert pd.read_csv(tmp_path / "v" / "paired.csv", index_col=0).loc["volatility-managed EW", "ΔSharpe"] == 0
    assert main(["compare", *map(str, trained_runs), "--split", split, "--out", str(tmp_path / "cmp"),
                 "--n-boot", "300"]) == 0
    text = capsys.readouterr().out
    summary = pd.read_csv(tmp_path / "cmp" / "summary.csv")
    assert {"ΔSharpe", "ΔSharpe lo", "ΔSharpe hi", "JKM p", "PSR", "DSR"} <= set(summary)
    fam = summary[summary["family"] == "relaxed/flat/exact"].iloc[0]
    assert fam["ΔSharpe lo"] <= fam["ΔSharpe"] <= fam["ΔSharpe hi"]
    cmp_paired = pd.read_csv(tmp_path / "cmp" / "paired.csv", index_col=0)
    assert "relaxed/flat/exact (mean of 2 seeds)" in cmp_paired.index and "ΔSharpe" in text
    assert "Paired columns" in (tmp_path / "cmp" / "summary.md").read_text()


@pytest.mark.parametrize("flags, match", [
    (["--baselines", "ivol,nonsense"], "unknown baseline 'nonsense'"),
    (["--against", "hrp"], "--against hrp: not among the baselines traded"),
    (["--n-boot", "5"], "--n-boot"),
])
def test_bad_paired_flags_are_one_line_errors_before_any_backtest(flags, match, tmp_path, capsys):
    assert main(["backtest", "equal-weight", "--out", str(tmp_path / "x"), *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert match in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "x").exists()


# -- execution lag, short-borrow fee, interest on cash ------------------------------------------------
@pytest.mark.parametrize("cost_model,fill,borrow_bps", [("drift", "next_close", 0.0), ("drift", "close", 300.0),
                                                        ("drift", "next_close", 300.0), ("target", "next_close", 300.0)])
def test_engine_agrees_with_the_env_rollout_for_each_fill_and_a_borrow_fee(prices, cost_model, fill, borrow_bps):
    """A long/short random policy: the env's rollout (weights indexed by the day they fill) equals the
    engine to 1e-12, with the borrow fee charged on the same short weights."""
    env = PortfolioEnv(prices=prices, window=16, split=SPLIT, cost_bps=15, full_period=True, cost_model=cost_model,
                       fill=fill, borrow_bps=borrow_bps)
    acts = iter(np.random.default_rng(1).uniform(-1, 1, size=(1000, 4)))
    bt = rollout(lambda o: next(acts), env)
    vec = weights_backtest(prices, bt.weights, cost_bps=15, cost_model=cost_model, borrow_bps=borrow_bps)
    np.testing.assert_allclose(bt.returns.to_numpy(), vec.returns.to_numpy(), rtol=0, atol=1e-12)
    assert bt.returns.index.equals(vec.returns.index) and len(bt.returns) == env.market.n_days
    np.testing.assert_allclose(bt.traded, vec.traded, rtol=1e-10)
    if borrow_bps:  # the fee is really charged: without it the same weights earn more
        free = weights_backtest(prices, bt.weights, cost_bps=15, cost_model=cost_model)
        fee = borrow_bps / 1e4 / 252 * np.maximum(-bt.weights.to_numpy(), 0).sum(1)
        np.testing.assert_allclose(free.returns.to_numpy() - vec.returns.to_numpy(), fee, rtol=1e-9, atol=1e-15)
        assert fee.mean() > 1e-5


def _sign_rule(R: pd.DataFrame) -> pd.DataFrame:
    """The 1-day sign rule: weights = sign of each asset's return of the decision day, gross 1."""
    s = np.sign(R)
    return s.div(s.abs().sum(axis=1).replace(0, 1), axis=0)


@pytest.mark.parametrize("fill", ["close", "next_close"])
def test_env_and_engine_agree_on_a_weights_policy_for_each_fill(prices, fill):
    """The env's policy reads the last return of its observation; the engine decides on day d's
    return and trades it at d (close) or at the next close: the same books to 1e-12."""
    W, N = 16, prices.shape[1]
    env = PortfolioEnv(prices=prices, window=W, split=SPLIT, cost_bps=10, full_period=True, fill=fill, borrow_bps=50)

    def policy(obs):
        s = np.sign(obs[(W - 1) * N : W * N])
        return s / max(np.abs(s).sum(), 1.0)

    bt = rollout(policy, env)
    days = decision_days(prices, SPLIT, W + (fill == "next_close"))
    decided = prices.index[prices.index.get_indexer(days) - (fill == "next_close")]
    w = _sign_rule(prices.pct_change().loc[decided])
    vec = weights_backtest(prices, w, cost_bps=10, fill=fill, borrow_bps=50)
    assert vec.weights.index.equals(bt.weights.index) and vec.returns.index.equals(bt.returns.index)
    np.testing.assert_allclose(vec.weights.to_numpy(), bt.weights.to_numpy(), atol=1e-15)
    np.testing.assert_allclose(bt.returns.to_numpy(), vec.returns.to_numpy(), rtol=0, atol=1e-12)


def test_next_close_baselines_ignore_the_prices_of_the_day_they_trade(prices):
    """With fill next_close the weights traded at t are decided on prices up to t−1: changing every
    price of day t changes none of them (and, with fill close, it does change the rules that read t)."""
    days = decision_days(prices, SPLIT, 16)
    t = days[days.to_series().dt.month.diff().fillna(0).ne(0).to_numpy()][3]  # a refit day (first of a month)
    changed = prices.copy()
    changed.loc[t] *= np.array([1.2, 0.8, 1.3, 0.7])
    moved = set()
    for kind in ("equal-weight", "ivol", "mom", "volman", "cash", "buy-and-hold"):
        for fill in ("close", "next_close"):
            a, b = (baseline(kind, p, SPLIT, 16, 10, "drift", fill=fill).weights for p in (prices, changed))
            same = np.array_equal(a.loc[:t].to_numpy(), b.loc[:t].to_numpy())
            if fill == "next_close" and kind != "buy-and-hold":  # buy & hold's target is its book: no decision
                assert same, kind
                assert np.array_equal(a.loc[:t].index, b.loc[:t].index) and a.index[0] == days[0]
            elif not same:
                moved.add((kind, fill))
    assert ("ivol", "close") in moved  # not vacuous: at close a rule that refits on day t reads it


@pytest.mark.parametrize("env_kw", [{}, {"normalize": True}, {"normalize": True, "obs_noise": 0.1, "stale_ticks": 0.1}])
def test_next_close_observation_at_t_does_not_contain_day_t(prices, env_kw):
    """The observation of the decision filled at t shows returns up to t−1 and the weights filled at
    t−1: rewriting day t's prices leaves it unchanged (with fill close it changes)."""
    from eqtrade.envs import make_env

    acts = np.random.default_rng(2).uniform(-1, 1, size=(80, 4))
    for fill in ("close", "next_close"):
        kw = dict(prices=prices, window=16, split=SPLIT, full_period=True, fill=fill, normalize=False) | env_kw
        base = make_env("portfolio", **kw)
        obs_a, info = base.reset()
        seen = [(obs_a, info["date"])]
        for a in acts:
            obs_a, _, _, _, info = base.step(a)
            seen.append((obs_a, info["date"]))
        k, t = 60, seen[60][1]
        changed = prices.copy()
        changed.loc[t] *= np.array([1.2, 0.8, 1.3, 0.7])
        other = make_env("portfolio", **(kw | {"prices": changed}))
        obs_b, _ = other.reset()
        for a in acts[:k]:
            obs_b, _, _, _, _ = other.step(a)
        if fill == "next_close":
            np.testing.assert_array_equal(seen[k][0], obs_b)
        else:
            assert not np.array_equal(seen[k][0], obs_b)


def test_trading_env_fills_and_borrow_agree_with_the_engine(prices):
    from eqtrade.envs import TradingEnv

    one = prices[["AAPL"]]
    for fill in ("close", "next_close"):
        env = TradingEnv(prices=one, window=16, split=SPLIT, full_period=True, fill=fill, borrow_bps=200, cost_bps=10)
        acts = iter(np.random.default_rng(3).integers(0, 3, size=1000))
        bt = rollout(lambda o: int(next(acts)), env)
        vec = weights_backtest(one, bt.weights, cost_bps=10, cost_model="target", borrow_bps=200)
        np.testing.assert_allclose(bt.returns.to_numpy(), vec.returns.to_numpy(), rtol=0, atol=1e-12)


def test_cash_earns_rf_on_free_cash_and_short_proceeds_earn_nothing():
    """By hand: cash = 1 − Σ max(w_i, 0) earns (or, negative, pays) one day of rf; shorts add nothing."""
    from eqtrade.backtest import Backtest
    from eqtrade.backtest.engine import with_cash_interest
    from eqtrade.backtest.metrics import daily_rate

    days = pd.bdate_range("2021-01-04", periods=5)
    w = pd.DataFrame([[0.6, -0.4, 0.0],   # 60% long, 40% short: 0.4 free cash (the proceeds earn nothing)
                      [1.2, 0.1, -0.3],   # 130/30: 0.3 borrowed, pays rf
                      [0.5, -0.5, 0.0],   # 50/50: 0.5 free cash
                      [0.0, 0.0, 0.0],    # all cash
                      [-1.0, 0.0, 0.0]],  # a full short: 1.0 free cash, no interest on the proceeds
                     index=days[:5], columns=["A", "B", "C"])
    r = pd.Series([0.01, -0.02, 0.0, 0.003, 0.004], index=days + pd.offsets.BDay(1), name="x")
    bt = Backtest("x", r, w)
    d = daily_rate(0.05)
    out = with_cash_interest(bt, 0.05)
    cash = np.array([0.4, -0.3, 0.5, 1.0, 1.0])
    np.testing.assert_allclose(out.returns.to_numpy(), r.to_numpy() + cash * d, rtol=1e-12, atol=1e-16)
    # the former rule (1 − Σw: short proceeds as cash) would have paid 0.8, 0.0, 1.0, 1.0, 2.0
    assert out.returns.iloc[0] == pytest.approx(0.01 + 0.4 * d) and out.returns.iloc[4] == pytest.approx(0.004 + d)


def test_long_only_baselines_pay_no_borrow_and_bad_fill_or_fee_is_one_line(prices, tmp_path, capsys):
    from eqtrade.envs import TradingEnv

    for kind in ("equal-weight", "ivol"):
        a, b = (baseline(kind, prices, SPLIT, 16, 10, "drift", borrow_bps=x) for x in (0.0, 500.0))
        assert a.returns.equals(b.returns)
    for call in (lambda: baseline("equal-weight", prices, SPLIT, 16, fill="tomorrow"),
                 lambda: weights_backtest(prices, pd.DataFrame(0.0, index=prices.index[:3], columns=prices.columns),
                                          fill="tomorrow"),
                 lambda: PortfolioEnv(prices=prices, window=16, split=SPLIT, fill="tomorrow"),
                 lambda: TradingEnv(prices=prices, window=16, split=SPLIT, fill="tomorrow")):
        with pytest.raises(ValueError, match="fill = 'tomorrow' is not one of 'close', 'next_close'"):
            call()
    for call in (lambda: baseline("equal-weight", prices, SPLIT, 16, borrow_bps=-1),
                 lambda: PortfolioEnv(prices=prices, window=16, split=SPLIT, borrow_bps=-1),
                 lambda: TradingEnv(prices=prices, window=16, split=SPLIT, borrow_bps=-1)):
        with pytest.raises(ValueError, match=r"borrow_bps = -1(\.0)? is out of range: it must be in \[0, 10000\]"):
            call()
    assert main(["backtest", "equal-weight", "--borrow-bps", "-1", "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "--borrow-bps -1.0 is out of range" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(SystemExit):
        main(["backtest", "equal-weight", "--fill", "tomorrow"])
    assert "invalid choice: 'tomorrow'" in capsys.readouterr().err


def test_backtest_fill_and_borrow_reach_the_run_env_and_the_baselines(trained_runs, tmp_path, capsys):
    from eqtrade.backtest import backtest_run

    (a, ca), (b, cb) = (backtest_run(trained_runs[0], SPLIT, fill=f, borrow_bps=100, baselines="none", record=False)
                        for f in ("close", "next_close"))
    assert (ca["fill"], cb["fill"], cb["borrow_bps"]) == ("close", "next_close", 100)
    ew = {x.name: x for x in a}["equal weight (daily)"], {x.name: x for x in b}["equal weight (daily)"]
    assert ew[0].returns.index.equals(ew[1].returns.index)
    assert not a[0].returns.equals(b[0].returns)  # the agent saw other observations
    assert main(["backtest", "equal-weight", "--split", "2019-01-01:2020-12-31", "--fill", "next_close",
                 "--borrow-bps", "50", "--no-html", "--out", str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    assert "orders fill at the next close" in out and "short borrow 50 bps/yr" in out
    assert "orders fill at the next close" in (tmp_path / "b" / "metrics.md").read_text()
    assert main(["compare", *map(str, trained_runs[:2]), "--split", "2019-01-01:2020-12-31", "--fill", "next_close",
                 "--borrow-bps", "50", "--baselines", "none", "--n-boot", "100", "--out", str(tmp_path / "c")]) == 0
    assert "orders fill at the next close" in (tmp_path / "c" / "summary.md").read_text()


def test_cagr_counts_years_as_trading_days_over_252(prices):
    """The CAGR of metrics.csv and of the tearsheet (both quantstats) is the growth over n trading
    days / 252 years, by hand (quantstats 0.0.64-0.0.69 divided calendar days by 252, about 45%
    too many years: the floor of the pin is 0.0.70)."""
    import quantstats as qs

    r = baseline("equal-weight", prices, SPLIT, 16).returns
    by_hand = float(np.prod(1 + r.to_numpy()) ** (252 / len(r)) - 1)
    assert metrics(r)["CAGR"] == pytest.approx(by_hand, rel=1e-9)
    assert float(qs.stats.cagr(r)) == pytest.approx(by_hand, rel=1e-9)


def test_one_asset_is_compared_with_its_buy_and_hold_and_cash_is_no_reference(tmp_path, capsys):
    """On one asset equal weight is that asset: the default reference is buy & hold; cash (zero
    excess return, no Sharpe) is refused as a reference before anything is backtested."""
    one = tmp_path / "aapl.toml"
    one.write_text('[baseline]\nkind = "buy-and-hold"\ntickers = ["AAPL"]\n')
    assert main(["backtest", str(one), "--split", "2019-01-01:2019-12-31", "--no-html",
                 "--out", str(tmp_path / "one"), "--n-boot", "200"]) == 0
    out = capsys.readouterr().out
    assert "paired against buy & hold EW" in out and "note: one asset" not in out  # (no rule was asked for)
    paired = pd.read_csv(tmp_path / "one" / "paired.csv", index_col=0)
    assert paired.loc["buy & hold EW", "ΔSharpe"] == 0 and len(paired) == 3  # itself, the index, cash: once each
    assert main(["backtest", "equal-weight", "--against", "cash", "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err.strip()
    assert "--against cash: cash has no Sharpe ratio" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "c").exists()


def test_compare_deflates_one_family_by_the_nulls_spread_and_refuses_mixed_costs(trained_runs, tmp_path,
                                                                                  monkeypatch):
    import eqtrade.backtest.report as report

    from eqtrade.backtest import compare_runs

    s = compare_runs(list(map(str, trained_runs[:2])), ("2019-01-01", "2020-12-31"), (0.0,), n_boot=200)
    fam = s[s["family"] == "relaxed/flat/exact"].iloc[0]
    assert np.isfinite(fam["DSR"]) and fam["DSR"] <= fam["PSR"]  # one family: the null's √(252/days)
    assert "the null's √(252/days)" in s.attrs["head"]
    real = report.backtest_run
    calls = []

    def dearer_second(*a, **k):
        bts, ctx = real(*a, **k)
        calls.append(1)
        return bts, dict(ctx, cost_bps=25.0) if len(calls) == 2 else ctx

    monkeypatch.setattr(report, "backtest_run", dearer_second)
    with pytest.raises(ValueError, match="cost_bps = 25.0 .* must share their costs"):
        compare_runs(list(map(str, trained_runs)), ("2019-01-01", "2020-12-31"), (0.0,), n_boot=200)


@pytest.mark.parametrize("fill", ["close", "next_close"])
def test_the_recorded_first_date_is_the_first_return_for_each_fill(fill):
    """At the data's start the window (plus the day of lag with next_close) shortens a backtest:
    config.toml's first_date is the first return's day in both fills."""
    from eqtrade.backtest.report import backtest_strategy

    bts, ctx = backtest_strategy("equal-weight", ("1990-01-01", "1990-06-30"), fill=fill, baselines="none")
    assert ctx["first_date"] == f"{bts[0].returns.index[0]:%Y-%m-%d}"
    assert any(n.startswith("shortened") for n in ctx["notes"])
