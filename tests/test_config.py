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
