"""The baselines on the bundled 20 stocks: seconds to compute each over the whole 2000-2022 span
(weights and backtest, lookback read before 2000), and each one's test-split Sharpe, CAGR, max
drawdown and turnover at 10 bps in the drift cost model (window 32, as `eqtrade backtest NAME`).

Run: .venv/bin/python bench/bench_baselines.py
"""

from __future__ import annotations

import time
import warnings

warnings.filterwarnings("ignore")


def main() -> None:
    from eqtrade.backtest.engine import BASELINES, baseline
    from eqtrade.backtest.metrics import metrics
    from eqtrade.envs import resolve_prices

    prices = resolve_prices(None, None, None)  # the bundled sp500-20, as backtest_strategy loads it
    rows = []
    for kind in BASELINES:
        t = time.perf_counter()
        full = baseline(kind, prices, ("2000-01-01", "2022-12-31"), 32, 10.0, "drift")
        seconds = time.perf_counter() - t
        test = baseline(kind, prices, "test", 32, 10.0, "drift")
        m = metrics(test.returns, test.turnover)
        rows.append((kind, test.name, seconds, len(full.returns), m["Sharpe"], m["CAGR"], m["Max drawdown"],
                     test.turnover))
    print("| kind | name | seconds 2000-2022 | days | test Sharpe | test CAGR | test max DD | test turnover/day |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for kind, name, s, n, sr, cagr, dd, to in rows:
        print(f"| {kind} | {name} | {s:.2f} | {n} | {sr:.2f} | {cagr:.3f} | {dd:.3f} | {to:.4f} |")


if __name__ == "__main__":
    main()
