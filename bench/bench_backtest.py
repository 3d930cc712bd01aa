"""Backtest speed: 20 assets over ~8 000 days, weights in, metrics out (no HTML), in the same run
as quantstats' own metrics on the resulting daily-return series.

Run: .venv/bin/python bench/bench_backtest.py [--reps 5]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd

warnings.filterwarnings("ignore")


def best_of(fn, reps: int) -> float:
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    import quantstats as qs

    from eqtrade.backtest import metrics, weights_backtest
    from eqtrade.data import load_prices

    prices = load_prices()
    days = prices.index[:-1]
    rng = np.random.default_rng(0)
    w = rng.uniform(-1, 1, size=(len(days), prices.shape[1]))
    w /= np.maximum(1.0, np.abs(w).sum(1, keepdims=True))
    weights = pd.DataFrame(w, index=days, columns=prices.columns)

    def ours_target():
        bt = weights_backtest(prices, weights, cost_bps=10, cost_model="target")
        return metrics(bt.returns, bt.turnover)

    def ours_drift():
        bt = weights_backtest(prices, weights, cost_bps=10, cost_model="drift")
        return metrics(bt.returns, bt.turnover)

    r = weights_backtest(prices, weights, cost_bps=10).returns

    def qs_only():
        return {"cagr": qs.stats.cagr(r), "sharpe": qs.stats.sharpe(r), "sortino": qs.stats.sortino(r),
                "max_dd": qs.stats.max_drawdown(r), "vol": qs.stats.volatility(r), "calmar": qs.stats.calmar(r)}

    def qs_full_metrics():
        return qs.reports.metrics(r, mode="full", display=False)

    rows = [("eqtrade: weights -> returns -> metrics (target costs)", best_of(ours_target, args.reps)),
            ("eqtrade: weights -> returns -> metrics (drift costs)", best_of(ours_drift, args.reps)),
            ("quantstats: the same six stats on the series", best_of(qs_only, args.reps)),
            ("quantstats: reports.metrics(mode='full')", best_of(qs_full_metrics, args.reps))]
    print(f"{prices.shape[1]} assets x {len(days)} days, best of {args.reps}")
    for name, sec in rows:
        print(f"{name:<58} {sec * 1e3:>9.1f} ms")


if __name__ == "__main__":
    main()
