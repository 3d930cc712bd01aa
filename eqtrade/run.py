"""Orchestration of one run (`eqtrade train`): resolve a run config (defaults < strategy TOML <
command line), build the agent, its envs and its callbacks, train with progress and evaluations,
and write runs/<name>/: config.toml, checkpoint.pt, best.pt, metrics.csv, learning_curve.png.

This is the layer above `agents` and `backtest`: it is the one place that knows which envs are
trading envs (their evaluation callback, the observation scaling recorded in the config)."""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import torch

from .agents.callbacks import MetricsCSV
from .envs.factory import is_dmc, is_pixels, is_trading
from .envs.factory import EnvSpec
from .strategies import load_toml
from .util import MAX_STEPS, MAX_STEPS_WHY, OBS_NOISE, dump_toml

log = logging.getLogger(__name__)

#: torch intra-op threads of a run by default: these networks are small, and more threads only
#: contend with other work on the machine (bench/bench_threads.py measures it)
DEFAULT_THREADS = 1

#: defaults of a run; a strategy TOML and the command line override them
BASE: dict[str, Any] = {
    # train_eval_every: the training split is walked beside the validation split at every n-th
    # evaluation (0: never; eqtrade.backtest.evaluation.TRAIN_EVAL_EVERY); init_from: a checkpoint
    # whose networks (and optimiser states) the run starts from instead of a fresh initialisation
    # ("": none; a walk-forward fold warm-started from the previous fold's best.pt)
    "run": {"algo": "sac", "env": "portfolio", "steps": 6000, "threads": DEFAULT_THREADS, "train_eval_every": 5,
            "init_from": ""},
    "env": {"window": 32, "split": "train", "mode": "long_short", "cost_bps": 10.0, "episode_length": 252},
    "eval_env": {"split": "valid", "full_period": True},
    "agent": {"family": "relaxed", "hidden": [256, 256], "reg_coef": 1e-3, "learning_starts": 1000,
              "eval_every": 2000, "eval_episodes": 1, "checkpoint_every": 2000, "buffer_size": 100_000},
}
#: agent defaults of the portfolio env, chosen by measurement on the planted market and on the
#: train/valid splits (bench/bench_planted.py, README "Making the trading agents learn"): one small
#: head shared by every asset, the exact-reward actor loss, rewards x100, a small entropy bonus
#: every env charges the broker's 10 bps on the drift accounting; the training env adds a turnover
#: penalty of 40 bps to the reward only, the regulariser chosen on the valid split (training costs of
#: 10, 20, 30, 50, 100 bps measured, 50 kept; 50 = 10 + 40 on the same accounting); evaluations,
#: model selection and backtests never carry it (`EnvSpec.evaluation_kwargs`)
PORTFOLIO_TURNOVER_PENALTY_BPS = 40.0
PORTFOLIO_AGENT: dict[str, Any] = {
    "hidden": [4], "encoder": {"kind": "per_asset"}, "actor_loss": "exact", "reward_scale": 100.0,
    "alpha_init": "auto", "entropy_frac": 0.1, "gamma": 0.9, "eval_every": 1000,
}
TRADING_ENV = {"window": 32, "split": "train", "cost_bps": 10.0, "episode_length": 252}
#: DQN defaults of the single-asset trading env, chosen on the planted market's valid split
#: (bench/bench_dqn_valid.py, docs/agents.md "Double DQN"): one hidden layer of 4, every action's
#: exact one-step target, rewards x100; strategies/dqn-FAMILY.toml hold the same values
TRADING_STEPS = 40_000
TRADING_AGENT: dict[str, Any] = {
    "hidden": [4], "banks": 2, "targets": "exact", "n_step": 1, "gamma": 0.9, "reward_scale": 100.0,
    "lr": 5e-4, "batch_size": 128, "learning_starts": 2000, "train_freq": 4, "target_update_interval": 250,
    "exploration_steps": 6000, "eps_end": 0.05, "eval_every": 2500, "checkpoint_every": 5000,
}


def merge(a: dict, b: dict) -> dict:
    """`b` merged into a copy of `a`, table by table (b wins)."""
    out = copy.deepcopy(a)
    for k, v in b.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def resolve_config(config: str | Path | None = None, agent: str | None = None, algo: str | None = None,
                   env: str | None = None, steps: int | None = None, seed: int | None = None,
                   data: str | None = None, break_strength: float | None = None, data_dir=None,
                   assets: str | None = None, context: str | None = None, tables: dict | None = None,
                   device: str | None = None, encoder: str | None = None, threads: int | None = None,
                   scale: str | None = None, horizons: str | None = None) -> dict:
    """The full run config: defaults, then the TOML file, then the command-line values.
    assets: the portfolio network's asset-axis family: "flat" (one MLP over all assets, tied to the
    universe), "exact" (one head shared by every asset) or "relaxed" (shared head plus per-asset
    embeddings); context: "none" or "mean" (each asset also reads the market mean).
    scale: the portfolio's return-scale family ([env] scale: "exact", "relaxed", "plain");
    horizons: multi-horizon inputs ([env] horizons: "default", "none" or "5,21,252-21").
    tables: the strategy tables as a dict, instead of a file (a sweep's trial).
    A relaxed or plain scale's volatility constants are fitted on the training env's split and
    recorded as [env] vol_ref (evaluation and test envs use the training split's)."""
    cfg = copy.deepcopy(BASE)
    file_cfg = copy.deepcopy(tables) if tables is not None else (load_toml(config) if config else {})
    config = config if config else ("the sweep spec" if tables is not None else None)
    unknown = sorted(set(file_cfg) - {"run", "env", "eval_env", "agent"})
    if unknown:
        raise ValueError(f"{config}: unknown table(s) {', '.join(f'[{t}]' for t in unknown)}; a run config has "
                         "[run], [env], [eval_env] and [agent] (baselines: eqtrade backtest STRATEGY)")
    bad_run = sorted(set(file_cfg.get("run", {})) - set(BASE["run"]))
    if bad_run:
        raise ValueError(f"{config}: unknown [run] option(s) {bad_run}; known: {', '.join(BASE['run'])}")
    if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or threads < 1):
        raise ValueError(f"--threads must be a positive integer, got {threads!r}")
    threads_cfg = file_cfg.get("run", {}).get("threads")
    if threads_cfg is not None and (not isinstance(threads_cfg, int) or isinstance(threads_cfg, bool) or threads_cfg < 1):
        raise ValueError(f"{config}: [run] threads must be a positive integer, got {threads_cfg!r}")
    if seed is not None:
        from .agents.base import BaseConfig

        BaseConfig.ranges["seed"].check("--seed", seed)
    steps_cfg = file_cfg.get("run", {}).get("steps")
    if steps_cfg is not None and (not isinstance(steps_cfg, int) or isinstance(steps_cfg, bool) or steps_cfg < 1):
        raise ValueError(f"{config}: [run] steps must be a positive integer, got {steps_cfg!r}")
    for what, n in (("--steps", steps), (f"{config}: [run] steps", steps_cfg)):
        if n is not None and n > MAX_STEPS:
            raise ValueError(f"{what} {n} is more than the limit of {MAX_STEPS:_} steps ({MAX_STEPS_WHY})")
    env_id = env or file_cfg.get("run", {}).get("env", cfg["run"]["env"])
    file_env = file_cfg.get("run", {}).get("env", cfg["run"]["env"])
    if env and env != file_env:  # --env on a config written for another env: its env tables may not fit
        _check_env_tables_fit(env, file_env, file_cfg, config)
    if is_pixels(env_id):  # DrQ-v2's own defaults (DrQConfig), not the state agents'
        cfg["agent"] = {"family": "plain", "eval_every": 2000, "eval_episodes": 1, "checkpoint_every": 2000}
    if env_id != "portfolio":  # defaults of the portfolio env do not apply elsewhere
        cfg["env"] = dict(TRADING_ENV) if env_id == "trading" else {}
        cfg["eval_env"] = {"split": "valid", "full_period": True} if env_id == "trading" else {}
        if env_id == "trading" and (algo or file_cfg.get("run", {}).get("algo", "dqn")) == "dqn":
            cfg["agent"].update(copy.deepcopy(TRADING_AGENT))
            cfg["run"]["steps"] = TRADING_STEPS
    elif (algo or file_cfg.get("run", {}).get("algo", "sac")) == "sac":
        cfg["agent"].update(copy.deepcopy(PORTFOLIO_AGENT))
        cfg["env"]["turnover_penalty_bps"] = PORTFOLIO_TURNOVER_PENALTY_BPS
    cfg = merge(cfg, file_cfg)
    if agent:
        cfg["agent"]["family"] = agent
    if env:
        cfg["run"]["env"] = env
    if steps is not None:
        cfg["run"]["steps"] = int(steps)
    if threads is not None:
        cfg["run"]["threads"] = int(threads)
    if seed is not None:
        cfg["agent"]["seed"] = int(seed)
    if device is not None:
        cfg["agent"]["device"] = device
    if data:
        cfg["env"]["prices"] = data
    if data_dir:  # where the dataset named by --data (or the config) is looked up
        if not is_trading(cfg["run"]["env"]):
            raise ValueError(f"--data-dir applies to the trading envs, not {cfg['run']['env']!r}")
        cfg["env"]["data_dir"] = str(data_dir)
    if assets is not None or context is not None:
        _set_asset_family(cfg, assets, context)
    if scale is not None or horizons is not None:
        _set_scale(cfg, scale, horizons)
    for key in SCALE_ENV_KEYS:
        if key in cfg.get("eval_env", {}):
            raise ValueError(f"[eval_env] {key}: the observation's scale family and features are the training env's "
                             f"(set them under [env]; evaluation envs inherit them)")
    if break_strength is not None:
        if not is_dmc(cfg["run"]["env"]):
            raise ValueError(f"--break applies to dm_control envs (dmc/..., dmc-pixels/...), not {cfg['run']['env']!r}")
        cfg["env"]["break_strength"] = float(break_strength)
    for table in ("env", "eval_env"):
        if "obs_noise" in cfg.get(table, {}):
            OBS_NOISE.check(f"[{table}] obs_noise", cfg[table]["obs_noise"])
    pixels = is_pixels(cfg["run"]["env"])
    if encoder is not None:
        from .agents.drq import ENCODERS

        if not pixels:
            raise ValueError(f"--encoder applies to pixel tasks (dmc-pixels/..., DrQ-v2), not {cfg['run']['env']!r}")
        if encoder not in ENCODERS:
            raise ValueError(f"--encoder must be one of {', '.join(ENCODERS)}, got {encoder!r}")
        cfg["agent"]["encoder"] = {"kind": encoder}
    if pixels:
        from types import SimpleNamespace

        from .agents.drq import encoder_kind

        encoder_kind(SimpleNamespace(family=cfg["agent"].get("family", "plain"), encoder=cfg["agent"].get("encoder")))
    if pixels and (algo or file_cfg.get("run", {}).get("algo", "drqv2")) != "drqv2":
        raise ValueError(f"{cfg['run']['env']}: pixel tasks train with --algo drqv2 (DrQ-v2), not "
                         f"{algo or file_cfg['run']['algo']}")
    if pixels:  # no probe: the algorithm is DrQ-v2 and there are no levels to fit (building a pixel
        # env costs ~0.8 s: physics and renderer); a bad [env] option is refused by build_agent, before
        # anything is written
        default_algo = "drqv2"
    else:
        try:
            probe = EnvSpec(cfg["run"]["env"], cfg["env"]).make()
        except TypeError as e:  # an unknown or mistyped [env] option
            raise ValueError(f"bad [env] option for {cfg['run']['env']!r}: {e}") from None
        from gymnasium import spaces

        from .envs.wrappers import fitted_vol_ref

        ref = fitted_vol_ref(probe)
        if ref is not None and "vol_ref" not in cfg["env"]:
            cfg["env"]["vol_ref"] = [round(v, 6) for v in ref]  # fitted on the training split
        default_algo = "dqn" if isinstance(probe.action_space, spaces.Discrete) else "sac"
    if algo:
        cfg["run"]["algo"] = algo
    elif not (file_cfg.get("run", {}).get("algo")):
        cfg["run"]["algo"] = default_algo
    check_budget(cfg, "--steps" if steps is not None else f"{config}: [run] steps" if steps_cfg is not None
                 else "[run] steps (the default)")
    return cfg


def _check_env_tables_fit(env: str, file_env: str, file_cfg: dict, config) -> None:
    """A config's [env] / [eval_env] keys that the env chosen by --env does not take: one error
    naming them, where they come from and the ways out."""
    from .envs.factory import env_option_names

    names = env_option_names(env)
    if names is None:
        return  # cannot tell here: the env itself refuses what it does not take
    foreign = [f"[{t}] {', '.join(bad)}" for t in ("env", "eval_env")
               if (bad := [k for k in file_cfg.get(t, {}) if k not in names])]
    if foreign:
        raise ValueError(f"--env {env}: {' and '.join(foreign)} of {config} (a config for {file_env!r}) do not apply "
                         f"to {env!r}; use a config written for {env!r} (or none), or remove those keys")


def check_budget(cfg: dict, what: str = "[run] steps") -> None:
    """A resolved run config whose agent options are in range (the algorithm config's ranges) and
    whose step budget trains and evaluates: more steps than learning_starts (else no update ever
    happens), and with evaluations (eval_every > 0) at least one after learning starts (else
    best.pt, which backtests use, holds the untrained policy). `what` names the budget's source."""
    from .agents import ALGOS

    algo = cfg["run"]["algo"]
    if algo not in ALGOS:
        raise ValueError(f"unknown algorithm {algo!r}; use {', '.join(ALGOS)}")
    agent = ALGOS[algo].config_cls.from_dict(cfg["agent"])  # types and ranges of every option
    steps, starts, every = int(cfg["run"]["steps"]), agent.learning_starts, agent.eval_every
    if steps <= starts:
        raise ValueError(f"{what} {steps} must exceed [agent] learning_starts {starts}: the first {starts} steps "
                         "take random actions and no update happens before them, so the run would end untrained; "
                         f"give more steps or a smaller learning_starts")
    first = (starts // every + 1) * every if every else None  # the first evaluation after an update
    if first is not None and steps < first:
        raise ValueError(f"{what} {steps} ends before the first evaluation of a trained policy: [agent] eval_every "
                         f"{every} evaluates at steps {every}, {2 * every}, ... and updates begin after "
                         f"learning_starts {starts}, so best.pt would be untrained or missing; give at least {first} "
                         "steps, a smaller eval_every, or eval_every = 0 (no evaluations; backtests then use the "
                         "last checkpoint)")


ASSET_CHOICES = ("flat", "exact", "relaxed")


def _set_asset_family(cfg: dict, assets: str | None, context: str | None) -> None:
    from .nn.asset import CONTEXTS

    if cfg["run"]["env"] != "portfolio":
        raise ValueError(f"--assets/--context apply to the portfolio env, not {cfg['run']['env']!r}")
    if assets is not None and assets not in ASSET_CHOICES:
        raise ValueError(f"--assets must be one of {', '.join(ASSET_CHOICES)}, got {assets!r}")
    if context is not None and context not in CONTEXTS:
        raise ValueError(f"--context must be one of {', '.join(CONTEXTS)}, got {context!r}")
    enc = dict(cfg["agent"].get("encoder") or {"kind": "flat"})
    if assets == "flat":
        if context not in (None, "none"):
            raise ValueError("--context needs a per-asset network (--assets exact or relaxed), not --assets flat")
        cfg["agent"]["encoder"] = {"kind": "flat"}
        return
    if assets is not None:
        if enc.get("kind") != "per_asset":
            enc = {"kind": "per_asset"}
        enc["assets"] = assets
    elif enc.get("kind") != "per_asset":
        raise ValueError(f"--context needs a per-asset network; this config's encoder is {enc}: add --assets exact")
    if context is not None:
        enc["context"] = context
    cfg["agent"]["encoder"] = enc


#: [env] keys of the return-scale axis and the features (the training env's; evaluation envs inherit them)
SCALE_ENV_KEYS = ("scale", "horizons", "vol_ref")


def _set_scale(cfg: dict, scale: str | None, horizons: str | None) -> None:
    """--scale / --horizons into [env] (portfolio only)."""
    from .envs.wrappers import parse_horizons
    from .symmetry import SCALE_FAMILIES

    if cfg["run"]["env"] != "portfolio":
        raise ValueError(f"--scale/--horizons apply to the portfolio env, not {cfg['run']['env']!r}")
    if scale is not None:
        if scale not in SCALE_FAMILIES:
            raise ValueError(f"--scale must be one of {', '.join(SCALE_FAMILIES)}, got {scale!r}")
        cfg["env"]["scale"] = scale
        cfg["env"].pop("vol_ref", None)  # refitted on the training split for this scale
        if scale != "plain":
            cfg["env"]["normalize"] = True
    if horizons is not None:
        if horizons in ("none", ""):
            cfg["env"].pop("horizons", None)
        else:
            h = parse_horizons(horizons)
            cfg["env"]["horizons"] = "default" if horizons == "default" else [list(x) if x[1] else x[0] for x in h]


def build_agent(cfg: dict):
    """The agent of a resolved run config, with its training and evaluation envs."""
    from .agents import ALGOS

    algo = cfg["run"]["algo"]
    if algo not in ALGOS:
        raise ValueError(f"unknown algorithm {algo!r}; use {', '.join(ALGOS)}")
    cls = ALGOS[algo]
    spec = EnvSpec(cfg["run"]["env"], cfg["env"], cfg.get("eval_env", {}))
    config = cls.config_cls.from_dict(cfg["agent"])
    try:
        env, eval_env = spec.make(), spec.make(evaluation=True)
    except TypeError as e:  # an unknown or mistyped [env] / [eval_env] option
        raise ValueError(f"bad [env] or [eval_env] option for {spec.id!r}: {e}") from None
    return cls(env, config, spec, eval_env)


def default_run_dir(cfg: dict, root: Path = Path("runs")) -> Path:
    a = cfg["agent"]
    base = root / f"{cfg['run']['algo']}-{a['family']}-{cfg['run']['env'].replace('/', '_')}-s{a.get('seed', 0)}"
    out, k = base, 2
    while out.exists():
        out, k = Path(f"{base}-{k}"), k + 1
    return out


def plot_learning_curve(metrics_csv: Path, png: Path, title: str) -> None:
    """Episode returns (and their moving average) and evaluation returns against steps; for the
    trading envs a second panel with train- and valid-split Sharpe (the generalisation gap) and
    the valid-split turnover."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    df = pd.read_csv(metrics_csv)
    gap = "eval_sharpe" in df and df["eval_sharpe"].notna().any()
    fig, axes = plt.subplots(2 if gap else 1, 1, figsize=(8, 7.5 if gap else 4.5), sharex=True, squeeze=False)
    ax = axes[0, 0]
    if "episode_return" in df:
        ep = df.dropna(subset=["episode_return"])
        ax.plot(ep["step"], ep["episode_return"], ".", alpha=0.3, color="C0", label="training episode")
        ax.plot(ep["step"], ep["episode_return"].rolling(10, min_periods=1).mean(), color="C0", label="moving mean (10)")
    if "eval_return" in df:
        ev = df.dropna(subset=["eval_return"])
        ax.plot(ev["step"], ev["eval_return"], "o-", color="C3", label="evaluation (deterministic)")
    ax.set_ylabel("return")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    if gap:
        ev = df.dropna(subset=["eval_sharpe"])
        ax2 = axes[1, 0]
        if "train_sharpe" in ev:
            tr = ev.dropna(subset=["train_sharpe"])  # walked at every few evaluations
            ax2.plot(tr["step"], tr["train_sharpe"], "o-", color="C0", label="train split Sharpe")
        ax2.plot(ev["step"], ev["eval_sharpe"], "o-", color="C3", label="valid split Sharpe")
        if "best_eval_return" in ev:
            best = ev.loc[ev["eval_return"].idxmax()]
            ax2.axvline(best["step"], color="grey", ls="--", lw=1, label="best.pt (best valid return)")
        ax2.set_ylabel("annualised Sharpe (deterministic policy)")
        ax2.grid(alpha=0.3)
        tw = ax2.twinx()
        tw.plot(ev["step"], ev["eval_turnover"], "s:", color="C2", alpha=0.7, label="valid turnover/day")
        tw.set_ylabel("turnover per day")
        h1, l1 = ax2.get_legend_handles_labels()
        h2, l2 = tw.get_legend_handles_labels()
        ax2.legend(h1 + h2, l1 + l2, loc="best", fontsize=8)
    axes[-1, 0].set_xlabel("environment step")
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def data_sha256(agent) -> str | None:
    """sha256 of the market data a trading run's envs can read (dates, tickers and returns of the
    training and evaluation envs, which keep nothing after their split's end), for provenance;
    None for other envs. Data after those splits (the test period) does not change it."""
    import hashlib

    if agent.env_spec is None or not is_trading(agent.env_spec.id):
        return None
    h = hashlib.sha256()
    for env in (agent.env, agent.eval_env):
        m = env.unwrapped.market
        h.update(",".join(m.tickers).encode())
        h.update(m.dates.asi8.tobytes())
        h.update(m.returns.tobytes())
    return h.hexdigest()


def run_callbacks(agent, cfg: dict, out: Path, on_eval=None, progress: bool | str = True) -> list:
    """The callbacks of a run: the trading evaluation for trading envs (else the generic one),
    metrics.csv, progress, checkpoints, a sweep's reporter (last: it reports after the checkpoint)."""
    from .agents.callbacks import standard_callbacks
    from .backtest.evaluation import TRAIN_EVAL_EVERY, TradingEvalCallback

    evaluation = (TradingEvalCallback(agent.env_spec, train_every=int(cfg["run"].get("train_eval_every", TRAIN_EVAL_EVERY)))
                  if agent.env_spec and is_trading(agent.env_spec.id) else None)
    return standard_callbacks(agent, out, progress, on_eval, evaluation=evaluation)


def resume_error(out: Path, e) -> str:
    """Why a run cannot be resumed from its damaged checkpoint.pt, and the ways out."""
    from .agents.checkpoint import looks_intact

    best = (f"; its best.pt looks intact and can still be backtested (eqtrade backtest {out} --checkpoint best)"
            if looks_intact(out / "best.pt") else "")
    return (f"cannot resume: {getattr(e, 'problem', e)}; train the run afresh in another directory "
            f"(eqtrade train --config {out}/config.toml --out NEW_DIR){best}")


def train(cfg: dict, out: Path | None = None, resume: bool = False, progress: bool | str = True, on_eval=None):
    """Run (or resume) training as configured; returns (agent, run directory). on_eval: called
    with each evaluation's metrics row (a sweep's reporter). The run directory is locked while
    it trains (eqtrade.lock): another command writing it is an error."""
    if out is None and not resume:
        out = default_run_dir(cfg)
    if out is None:
        raise FileNotFoundError("nothing to resume: give the run directory (--out)")
    [(agent, out)] = train_many([cfg], [Path(out)], resume, progress, [on_eval] if on_eval else None)
    return agent, out


def train_many(cfgs: list[dict], outs: list[Path], resume: bool = False, progress: bool | str = True,
               on_evals: list | None = None) -> list[tuple[Any, Path]]:
    """Train (or resume) K runs of one shape in one process as a stack (eqtrade.agents.stack):
    run k from cfgs[k] into outs[k], an ordinary run directory each; K = 1 is an ordinary run.
    The configs may differ only in what a stack allows (the seed, the data of the envs); all
    directories are locked while they train. Returns [(agent, run directory)]."""
    from contextlib import ExitStack

    from .lock import locked

    if len(cfgs) != len(outs) or not cfgs:
        raise ValueError(f"{len(cfgs)} configs for {len(outs)} run directories")
    if len({str(Path(o).resolve()) for o in outs}) < len(outs):
        raise ValueError("two runs of a stack into one directory: give each run its own --out")
    steps = {int(c["run"]["steps"]) for c in cfgs}
    if len(steps) > 1:
        raise ValueError(f"the runs of a stack train to one step budget, got {sorted(steps)}")
    torch.set_num_threads(int(cfgs[0]["run"].get("threads", DEFAULT_THREADS)))
    with ExitStack() as held:
        for out in outs:
            held.enter_context(locked(Path(out), "eqtrade train"))
        agents = [_load(cfg, Path(out), resume) for cfg, out in zip(cfgs, outs)]
        total = int(cfgs[0]["run"]["steps"])
        if resume and all(a.step >= total for a in agents):  # nothing to train: nothing is written
            what = f"{outs[0]} is" if len(agents) == 1 else f"the {len(agents)} runs are"
            import sys

            print(f"nothing to train: {what} already at step {max(a.step for a in agents)} of {total} (give --steps "
                  f"above {total} to train longer)", file=sys.stderr)
            return list(zip(agents, [Path(o) for o in outs]))
        if len(agents) > 1:
            from .agents.stack import check_stackable

            parents = {Path(o).resolve().parent for o in outs}
            folder = str(Path(outs[0]).parent) if len(parents) == 1 and all(
                Path(o).name == f"s{c['agent'].get('seed', 0)}" for o, c in zip(outs, cfgs)) else None
            check_stackable(agents, folder)  # before any run directory is written
        callbacks = []
        for k, (cfg, out, agent) in enumerate(zip(cfgs, outs, agents)):
            shown = progress if k == 0 else False  # one bar (or one run's lines) for a stack
            cbs = _start(cfg, Path(out), agent, resume, shown, (on_evals or [None] * len(cfgs))[k])
            if k == 0 and len(cfgs) > 1:
                _label_progress(cbs, cfgs)
            callbacks.append(cbs)
        if len(agents) == 1:
            agents[0].learn_with(cfgs[0]["run"]["steps"], callbacks[0])
        else:
            from .agents.stack import learn_stack

            learn_stack(agents, cfgs[0]["run"]["steps"], callbacks)
        for cfg, out in zip(cfgs, outs):
            _finish(cfg, Path(out))
    return list(zip(agents, [Path(o) for o in outs]))


def _label_progress(callbacks: list, cfgs: list[dict]) -> None:
    from .agents.callbacks import Progress

    seeds = ",".join(str(c["agent"].get("seed", 0)) for c in cfgs)
    for cb in callbacks:
        if isinstance(cb, Progress):
            cb.label, cb.runs = f"{len(cfgs)} runs (seeds {seeds})", len(cfgs)


def toml_plain(v):
    """A config value as TOML gives it back (tuples are lists)."""
    if isinstance(v, (list, tuple)):
        return [toml_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: toml_plain(x) for k, x in v.items()}
    return v


def config_drift(cfg: dict, agent) -> str | None:
    """Where a resumed run's config.toml disagrees with what its checkpoint was trained with
    (a hand edit that resuming would ignore), as `[table] key = value, but ...`; None if nowhere.
    The step budget, threads and device may change on resume."""
    if cfg["run"].get("algo", agent.algo) != agent.algo:
        return f"[run] algo = {cfg['run']['algo']!r}, but its checkpoint is a {agent.algo} agent"
    spec = agent.env_spec
    if spec is not None and cfg["run"].get("env", spec.id) != spec.id:
        return f"[run] env = {cfg['run']['env']!r}, but its checkpoint was trained on {spec.id!r}"
    saved = toml_plain(agent.config.to_dict())
    for k, v in cfg.get("agent", {}).items():
        if k != "device" and k in saved and toml_plain(v) != saved[k]:
            return f"[agent] {k} = {v!r}, but its checkpoint was trained with {saved[k]!r}"
    if spec is not None:
        for table, kw in (("env", spec.kwargs), ("eval_env", spec.eval_kwargs)):
            given = cfg.get(table, {})
            for k in sorted(set(given) | set(kw)):
                if k == "normalize" and k not in kw:  # written to config.toml as the factory's default
                    was = True
                else:
                    was = toml_plain(kw.get(k))
                if toml_plain(given.get(k)) != was:
                    return (f"[{table}] {k} = {given.get(k)!r}" if k in given else f"no [{table}] {k}") + \
                        f", but its checkpoint was trained with {was!r}"
    return None


def _load(cfg: dict, out: Path, resume: bool):
    """The agent of a run: loaded from its checkpoint to resume (its config.toml checked against
    it), or built; nothing is written yet."""
    from .agents import Agent

    if resume:
        if not (out / "checkpoint.pt").exists():
            raise FileNotFoundError(f"nothing to resume: {out}/checkpoint.pt does not exist")
        from .agents.checkpoint import CheckpointError

        try:
            agent = Agent.load(out / "checkpoint.pt", device=cfg["agent"].get("device", "auto"), build_env=True)
        except CheckpointError as e:
            raise CheckpointError(resume_error(out, e)) from None
        drift = config_drift(cfg, agent)
        if drift:
            raise ValueError(f"{out}/config.toml says {drift}: a run continues as it was trained (its checkpoint "
                             "holds the configuration); restore config.toml, or train a new run with the change "
                             f"(eqtrade train --config {out}/config.toml --out NEW_DIR)")
        return agent
    if (out / "checkpoint.pt").exists():
        raise FileExistsError(f"{out} already holds a run; use --resume to continue it or another --out")
    agent = build_agent(cfg)  # a failed start leaves no run folder behind
    agent.provenance = {"data_sha256": data_sha256(agent), "dataset": cfg["env"].get("prices")}
    if cfg["run"].get("init_from"):
        warm_start(agent, cfg["run"]["init_from"])
    return agent


def warm_start(agent, path) -> None:
    """Start `agent` from the networks of the checkpoint at `path` (a run's best.pt or
    checkpoint.pt: actor, critics and their targets, the entropy temperature) instead of its fresh
    initialisation; its optimisers, step count, replay buffer and episode start afresh (so that
    warm-started runs stack). The checkpoint must hold the same algorithm and network shapes."""
    from .agents import checkpoint as ckpt

    path = Path(path)
    if not path.is_file() and path.name == "best.pt" and (path.parent / "checkpoint.pt").is_file():
        log.warning("[run] init_from = %s: no best.pt (that run made no evaluation); starting from its "
                    "checkpoint.pt, the end of its training", path)
        path = path.parent / "checkpoint.pt"
    if not path.is_file():
        raise FileNotFoundError(f"[run] init_from = {str(path)!r}: no checkpoint there (the run to start from "
                                "must have finished)")
    state = ckpt.read(path)
    if state.get("algo") != agent.algo:
        raise ValueError(f"[run] init_from = {str(path)!r} holds a {state.get('algo')} agent, not {agent.algo}")
    fresh = {k: o.state_dict() for k, o in vars(agent).items() if isinstance(o, torch.optim.Optimizer)}
    try:
        agent._load_state(state["nets"])
        for k, o in fresh.items():  # the optimisers as they were: fresh
            getattr(agent, k).load_state_dict(o)
    except (RuntimeError, KeyError, ValueError) as e:  # another network: shapes or parameters differ
        first = str(e).strip().splitlines()[0]
        raise ValueError(f"[run] init_from = {str(path)!r}: its networks do not fit this run's ({first})") from None
    agent.provenance = dict(agent.provenance or {}, init_from=str(path))


def _start(cfg: dict, out: Path, agent, resume: bool, progress: bool | str, on_eval) -> list:
    """A run's callbacks, and its directory written as far as a start needs: config.toml, and
    metrics.csv as of the checkpoint for a resumed run."""
    from .agents.checkpoint import CheckpointError, read
    from .util import atomic_write_bytes

    if resume:
        from .strategies import load_toml

        if load_toml(out / "config.toml").get("run", {}).get("steps") != cfg["run"]["steps"]:
            atomic_write_bytes(out / "config.toml", dump_toml(cfg).encode())  # the budget it now trains to
        if (out / "best.pt").exists():  # best.pt may be newer than the last checkpoint (a crash between them)
            try:
                best = read(out / "best.pt")["best_eval"]
            except CheckpointError as e:
                log.warning("%s; resuming without it: it is replaced at the first evaluation that beats the run's "
                            "best so far (until then, backtest with --checkpoint last)", e.problem)
                best = None
            if best is not None and (agent.best_eval is None or best > agent.best_eval):
                agent.best_eval = best
        callbacks = run_callbacks(agent, cfg, out, on_eval, progress)
        # metrics.csv as of the checkpoint: rows written after it (before an interruption or a
        # kill) are dropped, so that the resumed run does not write them twice
        next(cb for cb in callbacks if isinstance(cb, MetricsCSV)).rewrite(agent.metrics)
        log.info("resuming %s at step %d", out, agent.step)
    else:
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.csv").unlink(missing_ok=True)  # left by a start killed before its first checkpoint
        if is_trading(cfg["run"]["env"]):  # the observation scaling is part of the run
            cfg["env"].setdefault("normalize", True)  # the env factory's default
        cfg["agent"] = agent.config.to_dict()  # every resolved option, defaults included
        cfg["agent"]["hidden"] = list(cfg["agent"]["hidden"])
        atomic_write_bytes(out / "config.toml", dump_toml(cfg).encode())
        callbacks = run_callbacks(agent, cfg, out, on_eval, progress)
    return callbacks


def _finish(cfg: dict, out: Path) -> None:
    if (out / "metrics.csv").exists():
        plot_learning_curve(out / "metrics.csv", out / "learning_curve.png",
                            f"{cfg['run']['algo'].upper()} {cfg['agent']['family']} on {cfg['run']['env']}")
