"""Performance metrics of daily returns, computed with quantstats."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

METRICS = ["CAGR", "Sharpe", "Sortino", "Max drawdown", "Volatility", "Calmar", "Turnover", "Hit rate",
           "Total return", "Days"]


def daily_rate(annual: float) -> float:
    """The daily rate that compounds to `annual` over 252 trading days."""
    if not -1 < annual < 1:
        raise ValueError(f"risk-free rate {annual!r} is not an annual rate as a fraction (e.g. 0.02 for 2%)")
    return (1.0 + annual) ** (1 / 252) - 1.0


def metrics(returns: pd.Series, turnover: float = 0.0, rf: float = 0.0) -> dict[str, float]:
    """quantstats' CAGR, Sharpe, Sortino, max drawdown, volatility (annualised, 252 days), Calmar,
    plus mean daily turnover, hit rate (share of days with a positive return), total return.
    Sharpe and Sortino are of the returns in excess of the annual risk-free rate `rf`."""
    import quantstats as qs

    r = returns.dropna()
    excess = r - daily_rate(rf)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = {
            "CAGR": float(qs.stats.cagr(r, periods=252)),
            "Sharpe": float(qs.stats.sharpe(excess, periods=252)),
            "Sortino": float(qs.stats.sortino(excess, periods=252)),
            "Max drawdown": float(qs.stats.max_drawdown(r)),
            "Volatility": float(qs.stats.volatility(r, periods=252)),
            "Calmar": float(qs.stats.calmar(r, periods=252)),
        }
    out["Turnover"] = float(turnover)
    out["Hit rate"] = float((r > 0).mean())
    out["Total return"] = float(np.prod(1 + r.to_numpy()) - 1)
    out["Days"] = float(len(r))
    return out


def metrics_table(backtests, rf: float = 0.0) -> pd.DataFrame:
    """One row per backtest (Sharpe and Sortino in excess of the annual risk-free rate `rf`)."""
    return pd.DataFrame({b.name: metrics(b.returns, b.turnover, rf) for b in backtests}).T[METRICS]
