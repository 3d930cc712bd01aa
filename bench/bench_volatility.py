"""Proof on a planted market where only volatility timing pays (issue 24): the scale axis.

The market (`eqtrade.data.synthetic.volatility_market`): a hidden calm/stormy regime sets every
asset's volatility (3x in storms) and expected return (positive when calm, zero in storms);
nothing else is predictable. The volatility-managed rule (EW x min(1, 15% / trailing 21-day vol
of EW) beats equal weight by a known margin. Splits: train 1900-1939, valid 1940-1949 (best.pt),
test 1950-2022 (73 years, long enough that the rule's gain over EW is >= 5 paired standard errors;
checked and printed).

For each scale family (exact: returns over their trailing volatility only, blind to the level;
relaxed: plus the volatility levels through gains that start at zero; plain: raw returns and
levels) and seed, SAC with the default portfolio agent (per-asset head, exact-reward actor loss)
and the default reflection/asset families is trained on train, selected on valid, and its best.pt
backtested once on test. Reported: test Sharpe, ΔSharpe vs EW with its paired interval, the share
of the rule's gain captured, turnover. Criterion (issue 24): relaxed captures >= half the rule's
gain with turnover < 0.3/day. A random policy is scored by the same criterion (it must fail).

    .venv/bin/python bench/bench_volatility.py [--scales exact,relaxed,plain] [--seeds 0] [--steps 6000]
        [--family relaxed] [--assets 10] [--action-map per_asset|normalize] [--window 32] [--penalty 40]
        [--split test|valid] [--agent KEY=VALUE,...] [--level-gain G] [--risk-aversion K]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

TRAIN, VALID, TEST = ("1900-01-01", "1939-12-31"), ("1940-01-01", "1949-12-31"), ("1950-01-01", "2022-12-28")
#: the span every score is computed on: TEST, or VALID with --split valid (choosing settings
#: without reading the test span; best.pt is chosen on VALID either way)
SCORED = {"span": TEST}
#: the training env of this market: the strategies' defaults (10 bps and the 40 bps regulariser)
ENV = {"window": 32, "cost_bps": 10.0, "turnover_penalty_bps": 40.0, "episode_length": 252, "action_map": "per_asset"}


def market(n_assets: int = 10, seed: int = 0) -> pd.DataFrame:
    from eqtrade.data.synthetic import volatility_market

    return volatility_market(n_assets, seed=seed)


def rule_gain(prices: pd.DataFrame, n_boot: int = 1000) -> dict:
    """EW and volatility-managed EW on the test split (the backtests' engine and costs), and the
    paired ΔSharpe of the rule against EW."""
    from eqtrade.backtest.engine import baseline
    from eqtrade.backtest.stats import delta_sharpe, sharpe

    ew = baseline("equal-weight", prices, SCORED["span"], ENV["window"], ENV["cost_bps"])
    vm = baseline("volman", prices, SCORED["span"], ENV["window"], ENV["cost_bps"])
    d = delta_sharpe(vm.returns, ew.returns, n_boot=n_boot)
    return {"ew": ew, "volman": vm, "ew_sharpe": sharpe(ew.returns), "rule_sharpe": sharpe(vm.returns),
            "gain": d["delta"], "gain_se": d["se"], "gain_in_se": d["delta"] / d["se"]}


def score(bt, ref: dict, n_boot: int = 1000) -> dict:
    """A test backtest against the rule: its Sharpe, ΔSharpe vs EW (paired), share of the rule's gain."""
    from eqtrade.backtest.stats import delta_sharpe, sharpe

    d = delta_sharpe(bt.returns, ref["ew"].returns, n_boot=n_boot)
    share = d["delta"] / ref["gain"]
    return {"sharpe": sharpe(bt.returns), "delta": d["delta"], "lo": d["lo"], "hi": d["hi"], "share": share,
            "turnover": bt.turnover, "passes": bool(share >= 0.5 and bt.turnover < 0.3)}


def regime_exposure(bt, prices: pd.DataFrame) -> tuple[float, float]:
    """Mean gross exposure of a backtest on calm and on stormy days (the hidden regime): how much
    the policy times the volatility level, whatever it earns."""
    storm = pd.Series(prices.attrs["storm"], index=prices.index).reindex(bt.weights.index).to_numpy()
    gross = bt.weights.abs().sum(1).to_numpy()
    return float(gross[~storm].mean()), float(gross[storm].mean())


def train(prices: pd.DataFrame, scale: str, family: str = "relaxed", seed: int = 0, steps: int = 6000,
          out: Path | None = None, agent: dict | None = None):
    """SAC (the portfolio defaults) on the train split, best.pt on valid; the agent loaded from best.pt."""
    from eqtrade.agents import SAC, Agent
    from eqtrade.agents.sac import SACConfig
    from eqtrade.envs.factory import EnvSpec
    from eqtrade.run import PORTFOLIO_AGENT

    kw = dict(ENV, prices=prices, split=list(TRAIN), scale=scale)
    from eqtrade.envs.wrappers import fitted_vol_ref

    ref = fitted_vol_ref(EnvSpec("portfolio", kw).make())
    if ref is not None:
        kw["vol_ref"] = ref  # fitted on the training split, used by the valid and test envs
    spec = EnvSpec("portfolio", kw, {"split": list(VALID), "full_period": True})
    cfg = SACConfig.from_dict({**PORTFOLIO_AGENT, "family": family, "seed": seed, "learning_starts": 1000,
                               "checkpoint_every": 0, "eval_episodes": 1, **(agent or {})})
    out = Path(out or tempfile.mkdtemp(prefix="volbench-"))
    sac = SAC(spec.make(), cfg, spec)
    sac.learn(steps, out_dir=out, progress=False)
    best = out / "best.pt"
    return Agent.load_policy(best, EnvSpec("portfolio", dict(kw, split=list(SCORED["span"]), full_period=True)).make()), spec


def test_backtest(policy_agent, spec) -> object:
    from eqtrade.backtest.engine import rollout
    from eqtrade.envs.factory import EnvSpec

    env = EnvSpec("portfolio", spec.evaluation_kwargs(split=list(SCORED["span"]), full_period=True)).make()
    return rollout(lambda o: policy_agent.predict(o, deterministic=True), env, name="agent")


def random_policy(prices: pd.DataFrame, ref: dict, seed: int = 0) -> dict:
    """Uniform random actions scored by the same criterion."""
    from eqtrade.backtest.engine import rollout
    from eqtrade.envs.factory import EnvSpec

    env = EnvSpec("portfolio", dict(ENV, prices=prices, split=list(SCORED["span"]), full_period=True)).make()
    rng = np.random.default_rng(seed)
    bt = rollout(lambda o: rng.uniform(-1, 1, env.action_space.shape), env, name="random")
    return score(bt, ref)


def run(scale: str, seed: int = 0, steps: int = 6000, family: str = "relaxed", n_assets: int = 10,
        market_seed: int = 0, prices: pd.DataFrame | None = None, ref: dict | None = None,
        agent_opts: dict | None = None) -> dict:
    prices = market(n_assets, market_seed) if prices is None else prices
    ref = rule_gain(prices) if ref is None else ref
    t0 = time.perf_counter()
    agent, spec = train(prices, scale, family, seed, steps, agent=agent_opts)
    bt = test_backtest(agent, spec)
    calm, storm = regime_exposure(bt, prices)
    return {"scale": scale, "family": family, "seed": seed, **score(bt, ref), "gross_calm": calm, "gross_storm": storm,
            "seconds": time.perf_counter() - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scales", default="exact,relaxed,plain")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--family", default="relaxed", help="the reflection family (default relaxed)")
    ap.add_argument("--assets", type=int, default=10)
    ap.add_argument("--market-seed", type=int, default=0)
    ap.add_argument("--window", type=int, default=32, help="days of returns in each observation (default 32)")
    ap.add_argument("--penalty", type=float, default=40.0, help="training-only turnover penalty, bps (default 40)")
    ap.add_argument("--action-map", default="per_asset", choices=["per_asset", "normalize"],
                    help="how actions become weights (eqtrade.envs.PortfolioEnv; default per_asset)")
    ap.add_argument("--split", default="test", choices=["test", "valid"],
                    help="the span scored: test (1950-2022) or valid (1940-1949: settings chosen without the test span)")
    ap.add_argument("--agent", default="", help="SAC options over the portfolio defaults, KEY=VALUE,... (e.g. lr=1e-3)")
    ap.add_argument("--risk-aversion", type=float, default=0.0,
                    help="the training env's risk_aversion κ: reward − (κ/2)·r² on the step's return (default 0)")
    ap.add_argument("--level-gain", type=float, default=None,
                    help="the per-asset head's level_gain (the levels' inputs multiplied by it: their weights learn "
                         "that many times faster; default 1)")
    args = ap.parse_args()
    SCORED["span"] = TEST if args.split == "test" else VALID
    import ast

    opts = {}
    for item in filter(None, args.agent.split(",")):
        k, _, v = item.partition("=")
        try:
            opts[k.strip()] = ast.literal_eval(v.strip())
        except (ValueError, SyntaxError):
            opts[k.strip()] = v.strip()
    if args.level_gain is not None:
        from eqtrade.run import PORTFOLIO_AGENT

        opts["encoder"] = {**PORTFOLIO_AGENT["encoder"], "level_gain": args.level_gain}
    ENV["action_map"] = args.action_map
    ENV["window"], ENV["turnover_penalty_bps"] = args.window, args.penalty
    if args.risk_aversion:
        ENV["risk_aversion"] = args.risk_aversion
    import torch

    torch.set_num_threads(1)
    prices = market(args.assets, args.market_seed)
    ref = rule_gain(prices)
    print(f"env: window {ENV['window']}, turnover penalty {ENV['turnover_penalty_bps']} bps, "
          f"risk aversion {ENV.get('risk_aversion', 0.0):g}, action_map "
          f"{ENV['action_map']}; SAC {args.family} reflection, {args.steps} steps, options {opts or 'the defaults'}")
    print(f"planted volatility market, {args.assets} assets (seed {args.market_seed}); {args.split} "
          f"{SCORED['span'][0]}..{SCORED['span'][1]}: "
          f"EW Sharpe {ref['ew_sharpe']:.3f}, volatility-managed {ref['rule_sharpe']:.3f}, gain {ref['gain']:+.3f} "
          f"= {ref['gain_in_se']:.1f} paired SE (turnover {ref['volman'].turnover:.4f}/day)")
    r = random_policy(prices, ref)
    print(f"random actions: Sharpe {r['sharpe']:.3f}, share of the rule's gain {r['share']:+.2f}, "
          f"turnover {r['turnover']:.3f}/day -> {'PASSES (the criterion is vacuous!)' if r['passes'] else 'fails'}")
    print(f"{'scale':8} {'seed':>4} {'Sharpe':>7} {'ΔSharpe vs EW [95%]':>26} {'share':>6} {'turnover':>9} "
          f"{'gross calm/storm':>17} {'s':>5}  criterion")
    for scale in args.scales.split(","):
        for seed in [int(s) for s in args.seeds.split(",")]:
            r = run(scale, seed, args.steps, args.family, prices=prices, ref=ref, agent_opts=opts)
            print(f"{scale:8} {seed:>4} {r['sharpe']:7.3f} {r['delta']:+8.3f} [{r['lo']:+.3f}, {r['hi']:+.3f}] "
                  f"{r['share']:6.2f} {r['turnover']:9.4f} {r['gross_calm']:8.2f}/{r['gross_storm']:.2f} "
                  f"{r['seconds']:5.0f}  {'passes' if r['passes'] else 'fails'}",
                  flush=True)


if __name__ == "__main__":
    main()
