"""One configuration: `eqtrade train`'s flags, strategy TOML files, resume checks and the dm_control
suite's run configs are checked against the typed run configuration (eqtrade.run's defaults and the
algorithms' config dataclasses), so that a default is stated once and no flag is forgotten by a check."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from eqtrade.agents import ALGOS, DQNConfig, DrQConfig, SACConfig
from eqtrade.cli import TRAIN_RUNTIME_FLAGS, build_parser, main
from eqtrade.run import BASE, PORTFOLIO_AGENT, resolve_config


def _train_parser() -> argparse.ArgumentParser:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["train"]


def _value(action) -> str:
    if action.choices:
        return str(list(action.choices)[0])
    return {int: "1", float: "0.5"}.get(action.type, "x")


def test_train_flags_state_no_defaults_of_their_own():
    """Every default lives in the run configuration: a flag left out means "as configured"."""
    for a in _train_parser()._actions:
        if a.option_strings and a.dest != "help":
            assert a.default in (None, False), f"{a.option_strings[-1]} has its own default {a.default!r}"


def test_every_configuring_flag_is_refused_by_resume(tmp_path, capsys):
    flags = _train_parser().get_default("config_flags")
    parser_flags = {a.option_strings[-1] for a in _train_parser()._actions
                    if a.option_strings and a.dest not in TRAIN_RUNTIME_FLAGS}
    assert {f for f, _ in flags} == parser_flags and "--agent" in parser_flags and "--encoder" in parser_flags
    actions = {a.option_strings[-1]: a for a in _train_parser()._actions if a.option_strings}
    for flag, _ in flags:
        code = main(["train", "--out", str(tmp_path / "run"), "--resume", flag, _value(actions[flag])])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and flag in err[0] and "cannot change it" in err[0], (flag, err)


def test_the_default_tables_name_only_real_options():
    known = {f.name for cls in (SACConfig, DQNConfig, DrQConfig) for f in dataclasses.fields(cls)}
    assert set(BASE["agent"]) <= known and set(PORTFOLIO_AGENT) <= {f.name for f in dataclasses.fields(SACConfig)}
    for env in ("portfolio", "trading", "Pendulum-v1", "CartPole-v1"):
        cfg = resolve_config(env=env, steps=5000)  # > learning_starts, with an evaluation after it
        ALGOS[cfg["run"]["algo"]].config_cls.from_dict(cfg["agent"])  # every resolved option is typed
        assert cfg["run"]["threads"] == 1


@pytest.mark.parametrize("table,key,value,expect", [
    ("run", "threads", 0, "threads must be a positive integer"),
    ("run", "thread", 2, "unknown [run] option"),
    ("agent", "gamma", "high", "has the wrong type"),
    ("agent", "lrr", 1e-3, "unknown SACConfig option"),
])
def test_config_typos_and_types_are_one_line_errors(tmp_path, capsys, table, key, value, expect):
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"[{table}]\n{key} = {value!r}\n".replace("'", '"'))
    assert main(["train", "--config", str(cfg), "--steps", "5", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expect in err[0], err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("pixels", [False, True])
def test_the_dmc_suite_writes_run_configs_the_run_configuration_accepts(pixels):
    from eqtrade.sweep.dmc import PIXELS, SuiteConfig, run_config

    sc = SuiteConfig(domains=["cartpole-swingup"], **({"pixels": True, **PIXELS} if pixels else {}))
    for family in sc.agents:
        tables = run_config(sc, "cartpole-swingup", 0.5, family, 0)
        cfg = resolve_config(tables=tables) if not pixels else tables  # pixel envs render: typed check only
        ALGOS[cfg["run"]["algo"]].config_cls.from_dict(cfg["agent"])


def test_every_numeric_agent_option_declares_its_range():
    """One table of ranges per algorithm config, checked on every construction: no numeric option
    is left out, and no range names an option that does not exist."""
    for cls in (SACConfig, DQNConfig, DrQConfig):
        ranges = cls.option_ranges()
        names = {f.name for f in dataclasses.fields(cls)}
        assert set(ranges) <= names, set(ranges) - names
        numeric = {f.name for f in dataclasses.fields(cls)
                   if any(t in str(f.type) for t in ("int", "float", "tuple")) and "bool" not in str(f.type)}
        assert numeric <= set(ranges), (cls.__name__, numeric - set(ranges))
        cls()  # the defaults are in range


@pytest.mark.parametrize("env,toml,needle", [
    ("portfolio", "batch_size = 0", "[agent] batch_size = 0 is out of range: it must be in [1, 10**6]"),
    ("portfolio", "gamma = 5.0", "[agent] gamma = 5.0 is out of range: it must be in [0, 1)"),
    ("portfolio", "buffer_size = 5", "[agent] buffer_size = 5 is out of range: it must be >= batch_size 256"),
    ("portfolio", "lr = 0.0", "[agent] lr = 0.0 is out of range: it must be > 0"),
    ("portfolio", "tau = 2.0", "[agent] tau = 2.0 is out of range: it must be in (0, 1]"),
    ("portfolio", "hidden = [4, 0]", "[agent] hidden entry = 0 is out of range"),
    ("portfolio", "gamma = nan", "[agent] gamma = nan is out of range"),
    ("portfolio", "alpha_init = -1.0", "[agent] alpha_init = -1.0 is out of range: it must be > 0"),
    ("CartPole-v1", "eps_start = 2.0", "[agent] eps_start = 2.0 is out of range: it must be in [0, 1]"),
    ("CartPole-v1", "n_step = 0", "[agent] n_step = 0 is out of range"),
    ("CartPole-v1", "learning_starts = -1", "[agent] learning_starts = -1 is out of range"),
])
def test_agent_options_out_of_range_are_refused_before_anything_is_written(tmp_path, capsys, env, toml, needle):
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[run]\nenv = "{env}"\n[agent]\n{toml}\n')
    out = tmp_path / "r"
    assert main(["train", "--config", str(cfg), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err
    assert not out.exists()


def test_drq_options_are_range_checked_too():
    with pytest.raises(ValueError, match=r"\[agent\] pad = -1 is out of range"):
        DrQConfig.from_dict({"pad": -1})
    with pytest.raises(ValueError, match=r"\[agent\] channels = 0 is out of range"):
        DrQConfig(channels=0)


@pytest.mark.parametrize("args,toml,needle", [
    (["--steps", "99999999999999999999"], "", "--steps 99999999999999999999 is more than the limit of 1_000_000_000"),
    ([], "[run]\nsteps = 999999999999\n", "[run] steps 999999999999 is more than the limit of 1_000_000_000"),
    (["--steps", "500"], "", "--steps 500 must exceed [agent] learning_starts 1000"),
    ([], "[run]\nsteps = 900\n", "[run] steps 900 must exceed [agent] learning_starts 1000"),
    (["--steps", "1000"], "", "--steps 1000 must exceed [agent] learning_starts 1000"),
    (["--steps", "1500"], "", "give at least 2000 steps"),  # the only evaluation (step 1000) is before any update
    (["--steps", "300"], "[agent]\nlearning_starts = 100\neval_every = 400\n", "give at least 400 steps"),
])
def test_step_budgets_that_cannot_train_or_evaluate_are_refused(tmp_path, capsys, args, toml, needle):
    cfg = tmp_path / "c.toml"
    cfg.write_text(toml)
    out = tmp_path / "r"
    assert main(["train", "--config", str(cfg), *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err
    assert not out.exists()


def test_step_budgets_that_train_and_evaluate_resolve():
    cfg = resolve_config(steps=2000)  # portfolio: learning_starts 1000, an evaluation at step 2000
    assert cfg["run"]["steps"] == 2000
    cfg = resolve_config(tables={"run": {"steps": 30}, "agent": {"learning_starts": 10, "eval_every": 0}})
    assert cfg["run"]["steps"] == 30  # eval_every = 0: no evaluations asked for


def test_dmc_budget_flags_are_bounded(tmp_path, capsys):
    for args, needle in [(["--steps", "99999999999999999999"], "more than the limit of 1_000_000_000"),
                         (["--eval-episodes", "0"], "--eval-episodes 0 is out of range"),
                         (["--jobs", "-1"], "--jobs -1 is out of range"),
                         (["--seeds", "100000"], "--seeds 100000 is out of range"),
                         (["--obs-noise", "0,-1"], "--obs-noise -1.0 is out of range: it must be >= 0")]:
        assert main(["dmc", "--quick", *args, "--out", str(tmp_path / "d")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and needle in err[0], (args, err)
        assert not (tmp_path / "d").exists()


def test_the_agents_page_lists_every_option_range():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "agents.md").read_text(encoding="utf-8")
    for cls in (SACConfig, DQNConfig, DrQConfig):
        for name, rng in cls.option_ranges().items():
            assert any(line.startswith(f"| `{name}` | {rng} |") for line in text.splitlines()), (cls.__name__, name)


@pytest.mark.parametrize("cls", [SACConfig, DQNConfig, DrQConfig])
def test_hidden_layers_are_bounded_in_number_and_width_for_every_algorithm(cls):
    cls(hidden=(8,) * 64)  # the most layers accepted
    with pytest.raises(ValueError, match=r"\[agent\] hidden has 65 layers: at most 64"):
        cls.from_dict({"hidden": [8] * 65})
    for width in (0, -4, 65537):
        with pytest.raises(ValueError, match=rf"\[agent\] hidden entry = {width} is out of range: it must be in \[1, 65536\]"):
            cls.from_dict({"hidden": [width]})
