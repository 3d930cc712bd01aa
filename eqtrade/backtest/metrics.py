"""Performance metrics of daily returns, computed with quantstats."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

METRICS = ["CAGR", "Sharpe", "Sortino", "Max drawdown", "Volatility", "Calmar", "Turnover", "Hit rate",
           "Total return", "Days"]


def metrics(returns: pd.Series, turnover: float = 0.0) -> dict[str, float]:
    """quantstats' CAGR, Sharpe, Sortino, max drawdown, volatility (annualised, 252 days), Calmar,
    plus mean daily turnover, hit rate (share of days with a positive return), total return."""
    import quantstats as qs

    r = returns.dropna()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = {
            "CAGR": float(qs.stats.cagr(r, periods=252)),
            "Sharpe": float(qs.stats.sharpe(r, periods=252)),
            "Sortino": float(qs.stats.sortino(r, periods=252)),
            "Max drawdown": float(qs.stats.max_drawdown(r)),
            "Volatility": float(qs.stats.volatility(r, periods=252)),
            "Calmar": float(qs.stats.calmar(r, periods=252)),
        }
    out["Turnover"] = float(turnover)
    out["Hit rate"] = float((r > 0).mean())
    out["Total return"] = float(np.prod(1 + r.to_numpy()) - 1)
    out["Days"] = float(len(r))
    return out


def metrics_table(backtests) -> pd.DataFrame:
    """One row per backtest."""
    return pd.DataFrame({b.name: metrics(b.returns, b.turnover) for b in backtests}).T[METRICS]
