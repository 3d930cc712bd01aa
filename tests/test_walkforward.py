"""Walk-forward studies: the folds tile the out-of-sample span, no fold's training or selection
reads its own test block or a later price, the joined paths cover every trading day once, and the
study's ledger refuses a second read of its test data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from eqtrade.backtest import ledger
from eqtrade.sweep import load_spec
from eqtrade.sweep.walkforward import folds, parse_walkforward

WF = """
[sweep]
name = "wf"
config = "sac-plain"
max_failures = 0

[sweep.grid]
"agent.family" = {families}
"agent.seed" = [0, 1]

[sweep.walkforward]
first_test_year = {first}
last_test_year = {last}
valid_years = 1
train_years = {train_years}
warm_start = {warm}

[sweep.report]
obs_noise = [0.0]

[run]
steps = {steps}

[env]
episode_length = 100

[agent]
learning_starts = 100
eval_every = 100
checkpoint_every = 100
batch_size = 32
buffer_size = 2000
"""


def write(path: Path, first=2017, last=2019, steps=200, train_years=3, warm=False,
          families='["plain", "relaxed"]') -> Path:
    path.write_text(WF.format(first=first, last=last, steps=steps, train_years=train_years, families=families,
                              warm=str(bool(warm)).lower()))
    return path


def test_folds_tile_the_years_and_each_trains_and_selects_before_its_test_year():
    fs = folds(parse_walkforward("x", {"first_test_year": 2011, "last_test_year": 2022}))
    assert [f.year for f in fs] == list(range(2011, 2023))
    for f in fs:
        assert f.train == ("", f"{f.year - 3}-12-31") and f.valid == (f"{f.year - 2}-01-01", f"{f.year - 1}-12-31")
        assert f.test == (f"{f.year}-01-01", f"{f.year}-12-31")
    for a, b in zip(fs, fs[1:]):  # consecutive test blocks: no gap, no overlap
        assert pd.Timestamp(a.test[1]) + pd.Timedelta(days=1) == pd.Timestamp(b.test[0])
    rolling = folds(parse_walkforward("x", {"first_test_year": 2015, "last_test_year": 2015, "train_years": 5}))
    assert rolling[0].train == ("2008-01-01", "2012-12-31")


@pytest.mark.parametrize("table,match", [
    ({"first_test_year": 2015, "last_test_year": 2012}, "first_test_year must be a year <= last_test_year"),
    ({"valid_years": 0}, "valid_years = 0 must be >= 1"),
    ({"train_years": -1}, "train_years = -1 must be >= 0"),
    ({"valid_years": 1.5}, "valid_years = 1.5 must be a whole number"),
    ({"folds": 3}, r"unknown \[sweep.walkforward\] option\(s\) \['folds'\]"),
])
def test_bad_walkforward_tables_are_one_line_errors(table, match):
    with pytest.raises(ValueError, match=match):
        parse_walkforward("spec.toml", table)


def test_a_walkforward_grid_may_not_set_the_fold_splits_nor_search_nor_name_a_report_split(tmp_path):
    base = write(tmp_path / "wf.toml").read_text()
    for old, new, match in [
        ('"agent.seed" = [0, 1]', '"agent.seed" = [0, 1]\n"env.split" = [["2000-01-01", "2010-12-31"]]',
         "set by \\[sweep.walkforward\\]"),
        ("[sweep.report]\n", '[sweep.report]\nsplit = "test"\n', "trades each fold's own test year"),
    ]:
        (tmp_path / "bad.toml").write_text(base.replace(old, new))
        with pytest.raises(ValueError, match=match):
            load_spec(tmp_path / "bad.toml")


def test_every_fold_trial_is_a_configuration_per_fold_and_sees_no_price_of_its_test_year(tmp_path):
    """The trial configs' training and evaluation envs hold no price on or after the fold's test
    year: an env keeps nothing after its split's end (`Market.from_prices`)."""
    from eqtrade.envs import EnvSpec
    from eqtrade.sweep.engine import trial_configs

    spec = load_spec(write(tmp_path / "wf.toml"))
    trials = trial_configs(spec)
    assert list(trials) == [f"family={f},seed={s},fold={y}" for f in ("plain", "relaxed") for s in (0, 1)
                            for y in (2017, 2018, 2019)]
    for name, cfg in list(trials.items())[:3]:
        year = int(name.rsplit("=", 1)[1])
        es = EnvSpec(cfg["run"]["env"], cfg["env"], cfg["eval_env"])
        for env in (es.make(), es.make(evaluation=True)):
            dates = env.unwrapped.market.dates
            assert dates[-1] < pd.Timestamp(f"{year}-01-01")
        assert es.make().unwrapped.market.dates[-1] < pd.Timestamp(f"{year - 1}-01-01")  # train ends before valid
    # seeds and folds are not configurations: the ledger counts two here
    ledger.record_trials(tmp_path, spec.trials())
    ledger.record_trials(tmp_path, spec.trials())  # a resumed study adds none twice
    assert ledger.n_configurations(tmp_path) == 2
    assert sum(e["event"] == "train" for e in ledger.read(tmp_path)) == 12


def test_warm_started_folds_chain_in_one_pack_and_train_in_fold_order(tmp_path):
    """warm_start: fold k's [run] init_from is fold k-1's best.pt (same configuration and seed);
    a chain is never split across packs, seeds' chains pack side by side, and a pack trains wave
    by wave (every chain's fold k after its fold k-1). Without it, folds pack freely."""
    from eqtrade.sweep.engine import pack_trials, trial_configs, waves
    from eqtrade.sweep.walkforward import warm_starts

    spec = load_spec(write(tmp_path / "wf.toml", warm=True))
    starts = warm_starts(spec, tmp_path / "out")
    assert starts["family=plain,seed=0,fold=2018"] == str(tmp_path / "out" / "runs" / "family=plain,seed=0,fold=2017"
                                                         / "best.pt")
    assert "family=plain,seed=0,fold=2017" not in starts and len(starts) == 2 * 2 * 2
    trials = trial_configs(spec)
    for n, p in starts.items():
        trials[n]["run"]["init_from"] = p
    out = tmp_path / "out"
    packs = pack_trials(trials, 2, out)
    assert sorted(map(len, packs.values())) == [6, 6]  # per family: 2 seeds x 3 folds
    for names in packs.values():
        order = waves(names, trials, out)
        assert [sorted(n.split(",")[-1] for n in w) for w in order] == [["fold=2017"] * 2, ["fold=2018"] * 2,
                                                                       ["fold=2019"] * 2]
    assert sorted(map(len, pack_trials(trials, 1, out).values())) == [3, 3, 3, 3]  # one chain per pack
    cold = load_spec(write(tmp_path / "cold.toml"))
    assert warm_starts(cold, tmp_path / "out") == {}
    assert sorted(map(len, pack_trials(trial_configs(cold), 5, out).values())) == [1, 1, 5, 5]
    # a checkpoint from elsewhere with a trial's name is no link, and no trial is ever dropped
    elsewhere = {n: dict(c, run=dict(c["run"], init_from=str(tmp_path / "pre" / "runs" / n / "best.pt")))
                 for n, c in trial_configs(cold).items()}
    packed = pack_trials(elsewhere, 5, out)
    assert sorted(n for p in packed.values() for n in p) == sorted(elsewhere)
    # two folds starting from one: both after it, none lost
    names = list(trials)[:3]
    fork = {n: dict(trials[n], run=dict(trials[n]["run"], init_from="")) for n in names}
    for n in names[1:]:
        fork[n]["run"]["init_from"] = str(out / "runs" / names[0] / "best.pt")
    assert waves(names, fork, out) == [[names[0]], names[1:]]
    assert sorted(n for p in pack_trials(fork, 1, out).values() for n in p) == sorted(names)
    with pytest.raises(ValueError, match="warm_start = 'yes' must be true or false"):
        parse_walkforward("s.toml", {"warm_start": "yes"})


def test_a_run_warm_started_from_a_checkpoint_starts_from_its_networks(tmp_path):
    """[run] init_from: the networks of the checkpoint (fresh optimisers and step count); a
    missing or mismatched checkpoint is a one-line error."""
    import torch

    from eqtrade.run import _load, resolve_config, train

    tables = {"run": {"steps": 150}, "env": {"episode_length": 60},
              "agent": {"family": "plain", "learning_starts": 50, "eval_every": 0, "checkpoint_every": 0,
                        "batch_size": 16}}
    cfg = resolve_config(tables=tables)
    agent, _ = train(cfg, out=tmp_path / "a", progress=False)
    warm = dict(cfg, run=dict(cfg["run"], init_from=str(tmp_path / "a" / "checkpoint.pt")))
    b = _load(warm, tmp_path / "b", resume=False)
    for p, q in zip(agent.actor.parameters(), b.actor.parameters()):
        assert torch.equal(p, q)
    for p, q in zip(agent.critic.parameters(), b.critic.parameters()):
        assert torch.equal(p, q)
    assert b.step == 0 and not b.actor_opt.state_dict()["state"]
    cold = _load(cfg, tmp_path / "c", resume=False)
    assert not all(torch.equal(p, q) for p, q in zip(agent.actor.parameters(), cold.actor.parameters()))
    with pytest.raises(FileNotFoundError, match="init_from = .*no checkpoint there"):
        _load(dict(cfg, run=dict(cfg["run"], init_from=str(tmp_path / "nope.pt"))), tmp_path / "d", resume=False)
    other = dict(cfg, run=dict(cfg["run"], init_from=str(tmp_path / "a" / "checkpoint.pt")),
                 agent=dict(cfg["agent"], hidden=[7]))
    with pytest.raises(ValueError, match="its networks do not fit"):
        _load(other, tmp_path / "e", resume=False)


def test_the_ledger_refuses_a_second_read_unless_forced_and_records_it(tmp_path):
    assert ledger.check_test_read(tmp_path, "2011-01-01..2022-12-31") == 0
    with pytest.raises(ledger.TestReadRefused, match="read before for another study .1 time.*--force-test-read"):
        ledger.check_test_read(tmp_path, "2011-01-01..2022-12-31")
    assert ledger.check_test_read(tmp_path, "2011-01-01..2022-12-31", force=True) == 1
    reads = [e for e in ledger.read(tmp_path) if e["event"] == "test_read"]
    assert [e["forced"] for e in reads] == [False, True]
    assert ledger.check_test_read(tmp_path, "another block") == 0  # another block is another first look
    (tmp_path / ledger.LEDGER).write_text('{"event": "train"}\nnot json\n')
    with pytest.raises(ValueError, match="ledger.jsonl:2 is not a JSON line"):
        ledger.read(tmp_path)


def test_the_same_study_reading_its_test_block_again_is_a_repeat_and_a_changed_one_is_refused(tmp_path):
    """A resumed study rewriting its report reads the same numbers (a repeat, recorded); a study
    whose configurations changed after the look is refused, unless forced."""
    a, b = ledger.digest({"grid": {"agent.family": ["plain"]}}), ledger.digest({"grid": {"agent.family": ["relaxed"]}})
    assert a != b and a == ledger.digest({"grid": {"agent.family": ["plain"]}})
    block = "split 2019-01-01:2022-12-31"
    assert ledger.check_test_read(tmp_path, block, content=a) == 0
    assert ledger.check_test_read(tmp_path, block, content=a) == 1
    with pytest.raises(ledger.TestReadRefused, match="another study"):
        ledger.check_test_read(tmp_path, block, content=b)
    ledger.check_test_read(tmp_path, block, content=b, force=True)
    with pytest.raises(ledger.TestReadRefused):  # after a changed read, even the first content is not a repeat
        ledger.check_test_read(tmp_path, block, content=a)
    reads = [(e["repeat"], e["forced"]) for e in ledger.read(tmp_path) if e["event"] == "test_read"]
    assert reads == [(False, False), (True, False), (False, True)]
    # an overlapping block is the same test data; a restart makes the same content a new look
    other = tmp_path / "o"
    other.mkdir()
    ledger.check_test_read(other, "2011-01-01..2022-12-31", content=a)
    for block in ("2011-01-01..2023-12-31", "2012-01-01..2022-12-31", "2022-06-01..2022-06-30"):
        with pytest.raises(ledger.TestReadRefused, match="overlapping block"):
            ledger.check_test_read(other, block, content=a)
    assert ledger.check_test_read(other, "2023-01-01..2023-12-31", content=a) == 0  # a block never seen
    ledger.record_restart(other)
    with pytest.raises(ledger.TestReadRefused, match="started afresh"):
        ledger.check_test_read(other, "2011-01-01..2022-12-31", content=a)
    # a read that is only planned (a report that failed halfway) leaves no line
    third = tmp_path / "t"
    third.mkdir()
    ledger.plan_test_read(third, "2011-01-01..2022-12-31", content=a)
    assert ledger.read(third) == []


def test_split_returns_are_exactly_the_splits_trading_days_so_consecutive_splits_tile():
    from eqtrade.backtest.engine import baseline
    from eqtrade.data import load_bundled

    prices = load_bundled("sp500-20")
    parts = [baseline("equal-weight", prices, (f"{y}-01-01", f"{y}-12-31"), 32).returns for y in (2017, 2018, 2019)]
    joined = pd.concat(parts)
    days = prices.index[(prices.index >= "2017-01-01") & (prices.index <= "2019-12-31")]
    assert joined.index.equals(days)  # every trading day once, none twice
    assert all(p.index[0].year == p.index[-1].year for p in parts)


def test_a_tiny_walkforward_study_joins_its_folds_and_records_every_test_read(tmp_path, ray_instance, capsys):
    """1 family x 2 seeds x 2 folds of 200 steps through `eqtrade sweep`: one joined path per
    seed over 2018-2019 and the seeds' book, with the paired columns, folds.json, the ledger; the
    same report again is a repeat, a changed one is refused, and forced reads are recorded (the
    folds of several families: test_every_fold_trial_is_a_configuration_per_fold...)."""
    from eqtrade.cli import main

    spec = write(tmp_path / "wf.toml", first=2018, warm=True, families='["plain"]')
    out = tmp_path / "out"
    assert main(["sweep", str(spec), "--out", str(out), "--cpus", "2", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "stationary bootstrap" in printed
    rets = pd.read_parquet(out / "report" / "returns.parquet")
    from eqtrade.data import load_bundled

    idx = load_bundled("sp500-20").index
    assert rets.index.equals(idx[(idx >= "2018-01-01") & (idx <= "2019-12-31")])
    agents = [c for c in rets if c.startswith("SAC ") and "mean of" not in c]
    assert len(agents) == 2 and rets[agents].notna().all().all()
    assert [c for c in rets if "mean of 2 seeds" in c]  # the seeds' book, joined over the folds
    paired = pd.read_csv(out / "report" / "paired.csv", index_col=0)
    for col in ("Sharpe", "Sharpe SE", "ΔSharpe", "ΔSharpe lo", "ΔSharpe hi", "JKM p", "IR", "IR t", "corr", "DSR"):
        assert col in paired
    ew = [n for n in paired.index if n.startswith("equal weight")][0]
    assert paired.loc[ew, "ΔSharpe"] == 0
    assert (paired.loc[agents, "ΔSharpe lo"] <= paired.loc[agents, "ΔSharpe hi"]).all()
    per_fold = pd.read_csv(out / "report" / "per_fold.csv")
    assert sorted(per_fold["year"].unique()) == [2018, 2019]
    fj = json.loads((out / "folds.json").read_text())
    assert [f["year"] for f in fj["folds"]] == [2018, 2019]
    assert ledger.n_configurations(out) == 1
    # warm_start: each fold but the first started from the previous fold's best.pt, and said so
    import tomllib

    cfg = tomllib.loads((out / "runs" / "family=plain,seed=1,fold=2019" / "config.toml").read_text())
    assert cfg["run"]["init_from"] == str(out.resolve() / "runs" / "family=plain,seed=1,fold=2018" / "best.pt")
    first = tomllib.loads((out / "runs" / "family=plain,seed=1,fold=2018" / "config.toml").read_text())
    assert first["run"]["init_from"] == ""
    # the report's Sharpe of an agent equals its own folds' returns joined by hand
    run = out / "runs" / "family=plain,seed=0,fold=2019"
    from eqtrade.backtest.report import backtest_run

    bts, _ = backtest_run(run, ("2019-01-01", "2019-12-31"))
    np.testing.assert_allclose(rets.loc[bts[0].returns.index, "SAC plain/exact/exact s0"], bts[0].returns, rtol=0, atol=1e-15)
    from eqtrade.sweep.walkforward import walkforward_report

    walkforward_report(load_spec(spec), out, out / "report")  # the same study again: a repeat
    changed = load_spec(spec)
    changed.report = dict(changed.report, against="volman")  # chosen after the look: refused
    with pytest.raises(ledger.TestReadRefused):
        walkforward_report(changed, out, out / "report")
    table = walkforward_report(changed, out, out / "report", force=True)
    assert table.attrs["against"].startswith("volatility-managed")
    reads = [(e["repeat"], e["forced"]) for e in ledger.read(out) if e["event"] == "test_read"]
    assert reads == [(False, False), (True, False), (False, True)]


def test_starting_a_sweep_afresh_keeps_its_ledger(tmp_path, monkeypatch):
    """--force clears a sweep directory but its ledger: what was seen stays seen."""
    import eqtrade.cli as cli

    out = tmp_path / "sweep"
    out.mkdir()
    (out / "sweep.json").write_text("{}")
    (out / "runs").mkdir()
    ledger.check_test_read(out, "split 2019", content="a")
    cleared = {}

    def fake_run_sweep(spec, o, **kw):  # stop after the --force handling: what is left in OUT
        cleared["left"] = sorted(p.name for p in Path(o).iterdir() if not p.name.startswith(".eqtrade"))
        return [], None

    monkeypatch.setattr("eqtrade.sweep.run_sweep", fake_run_sweep, raising=False)
    monkeypatch.setattr("eqtrade.sweep.study.run_sweep", fake_run_sweep)
    spec = tmp_path / "s.toml"
    spec.write_text('[sweep]\nname = "s"\nconfig = "sac-plain"\n[sweep.grid]\n"agent.seed" = [0]\n')
    cli.main(["sweep", str(spec), "--out", str(out), "--force", "--no-progress"])
    assert cleared.get("left") == [ledger.LEDGER], cleared


@pytest.mark.parametrize("against, match", [("cash", "cash has no Sharpe"), ("meanrisk", "not among the baselines"),
                                            ("nonsense", "unknown baseline")])
def test_a_report_reference_that_is_not_traded_is_refused_at_load(tmp_path, against, match):
    """[sweep.report] against is checked when the spec is read, before any trial: one line."""
    spec = write(tmp_path / "wf.toml")
    spec.write_text(spec.read_text().replace("obs_noise = [0.0]", f'obs_noise = [0.0]\nagainst = "{against}"'))
    with pytest.raises(ValueError, match=match):
        load_spec(spec)
    assert load_spec(write(tmp_path / "ok.toml")).report.get("against", "equal-weight") == "equal-weight"
