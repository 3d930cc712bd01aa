"""How much an edge depends on same-close execution: the 1-day sign rule (weights = the sign of
each asset's return of the decision day, scaled to gross 1) on the bundled 20 stocks, test split
(2019-2022), window 32, drift costs, filled at the close it is decided on (fill="close") and one
day later (fill="next_close"); Sharpe gross of costs (0 bps) and at 10 bps. Both go through the
engine (`weights_backtest`) and, as a check, through PortfolioEnv's full-period rollout with a
policy that reads the last return of its observation (they must agree).

Run: .venv/bin/python bench/bench_fill.py
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def sign_rule(R: pd.DataFrame) -> pd.DataFrame:
    """Weights = sign of each asset's return, scaled to gross exposure 1."""
    s = np.sign(R)
    return s.div(s.abs().sum(axis=1).replace(0, 1), axis=0)


def main() -> None:
    from eqtrade.backtest import decision_days, rollout, weights_backtest
    from eqtrade.backtest.metrics import metrics
    from eqtrade.data import load_prices
    from eqtrade.envs import PortfolioEnv

    prices = load_prices()
    W, N = 32, prices.shape[1]
    print(f"1-day sign rule, {N} bundled stocks, test split, window {W}, drift costs")
    print(f"{'fill':<11} {'cost bps':>8} {'Sharpe':>7} {'CAGR':>7} {'turnover/day':>12} {'env - engine':>13}")
    for fill in ("close", "next_close"):
        lag = int(fill == "next_close")
        days = decision_days(prices, "test", W + lag)
        decided = prices.index[prices.index.get_indexer(days) - lag]  # the data each order is decided on
        w = sign_rule(prices.pct_change().loc[decided])
        for cost in (0.0, 10.0):
            bt = weights_backtest(prices, w, cost_bps=cost, fill=fill)
            env = PortfolioEnv(prices=prices, window=W, split="test", cost_bps=cost, full_period=True, fill=fill)

            def policy(obs):
                s = np.sign(obs[(W - 1) * N : W * N])
                return s / max(np.abs(s).sum(), 1.0)

            gap = float(np.abs(rollout(policy, env).returns.to_numpy() - bt.returns.to_numpy()).max())
            m = metrics(bt.returns, bt.turnover)
            print(f"{fill:<11} {cost:>8g} {m['Sharpe']:>7.2f} {m['CAGR']:>7.1%} {bt.turnover:>12.3f} {gap:>13.1e}")


if __name__ == "__main__":
    main()
