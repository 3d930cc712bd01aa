"""Stability under reordering the assets (the WaveCorr test, Marzban et al. 2021): each trained
policy (best.pt) is backtested on the same split with the price columns in their original order and
in K random orders. A policy equivariant to permuting assets holds the same weight in each ticker
whatever its column, so its returns do not move; a flat network's do.

Prints, per run and per family: the Sharpe in the original order, the spread (max - min) of the
Sharpe over the orders, and the largest change of any ticker's weight on any day (weights mapped
back to tickers), with drift costs (as `eqtrade backtest`). And the actor's permutation error on
the split's real observations ("exchange error": ‖f(π·x) − π·f(x)‖/‖f(x)‖ over 8 random π, the
network's own asset slots kept in place): how far the policy treats assets differently when their
data are exchanged — 0 for a shared head, the learned symmetry breaking of relaxed per-asset
embeddings (which follow their tickers, so reordering columns moves nothing), large for a flat
network.

    .venv/bin/python bench/bench_reorder.py runs/assets/*-s* [--split test] [--orders 5]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pandas as pd


def reorder_stability(run_dir, split: str = "test", orders: int = 5, seed: int = 0) -> dict:
    from eqtrade.agents import Agent, EnvSpec
    from eqtrade.backtest.engine import rollout
    from eqtrade.backtest.metrics import metrics
    from eqtrade.backtest.report import _eval_env_kwargs, family_label, run_checkpoint
    from eqtrade.data.market import resolve_prices

    from eqtrade.agents.checkpoint import read

    path, _ = run_checkpoint(run_dir, "best")
    state = read(path)
    spec = EnvSpec(**state["env_spec"])
    kw = dict(_eval_env_kwargs(spec, split), cost_model="drift")
    prices = resolve_prices(kw.pop("prices", None), kw.pop("tickers", None), kw.get("data_dir"))
    rng = np.random.default_rng(seed)
    sharpes, base_w, max_dw, label = [], None, 0.0, None
    for k in range(orders + 1):
        cols = list(prices.columns) if k == 0 else list(rng.permutation(prices.columns))
        env = EnvSpec("portfolio", dict(kw, prices=prices[cols])).make()
        agent = Agent.load_policy(path, env)
        label = family_label(agent.config.family, agent.config.encoder, "portfolio")
        bt = rollout(lambda o: agent.predict(o, deterministic=True), env)
        sharpes.append(metrics(bt.returns)["Sharpe"])
        w = bt.weights[list(prices.columns)].to_numpy()
        if base_w is None:
            base_w = w
            obs = _observations(env)
            from eqtrade.nn.measure import permutation_errors

            exchange = permutation_errors(agent.actor, env.unwrapped.symmetry, torch.as_tensor(obs, dtype=torch.float32),
                                          reflect=False)["mean"]
        else:
            max_dw = max(max_dw, float(np.abs(w - base_w).max()))
    return {"run": str(run_dir), "family": label, "sharpe": sharpes[0],
            "sharpe spread over orders": max(sharpes) - min(sharpes), "max weight change": max_dw,
            "exchange error": exchange}


def _observations(env, n: int = 256):
    """Up to n observations of the split (zero weights held: the policy's reading of the market)."""
    u = env.unwrapped
    W, X = u.window, u._X
    days = np.linspace(u.market.first, u.market.last, min(n, u.market.n_days)).astype(int)
    return np.stack([np.concatenate([X[t - W + 1 : t + 1].reshape(-1), np.zeros(u.n_assets)]) for t in days])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--split", default="test")
    ap.add_argument("--orders", type=int, default=5, help="random column orders per run (default 5)")
    args = ap.parse_args(argv)
    rows = [reorder_stability(r, args.split, args.orders) for r in args.runs]
    df = pd.DataFrame(rows)
    print(f"stability under {args.orders} random asset orders, {args.split} split (best.pt, drift costs)")
    print(df.to_markdown(index=False, floatfmt=".4f"))
    agg = df.groupby("family", sort=False).agg(
        seeds=("run", "size"), sharpe=("sharpe", "mean"),
        mean_sharpe_spread=("sharpe spread over orders", "mean"), max_weight_change=("max weight change", "max"),
        exchange_error=("exchange error", "mean"))
    print()
    print(agg.to_markdown(floatfmt=".4f"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
