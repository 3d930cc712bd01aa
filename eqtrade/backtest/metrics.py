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


def rf_daily(rf, index: pd.DatetimeIndex) -> pd.Series:
    """The risk-free return of each day of `index` (realised from the day before): from an annual
    rate (a number), or from a cash-like price series (e.g. a T-bill ETF's adjusted closes), whose
    daily returns are used (a day it did not trade earns nothing)."""
    if isinstance(rf, pd.Series):
        p = rf.dropna()
        if p.empty or p.index[0] > index[0] - pd.Timedelta(days=7) or p.index[-1] < index[-1]:
            raise ValueError(f"risk-free series {rf.name!r} does not cover {index[0]:%Y-%m-%d}..{index[-1]:%Y-%m-%d}")
        full = p.reindex(p.index.union(index)).ffill()
        return (full / full.shift(1) - 1).reindex(index).fillna(0.0)
    return pd.Series(daily_rate(float(rf)), index=index)


def rf_label(rf) -> str:
    """How a report names the risk-free rate it used."""
    if isinstance(rf, pd.Series):
        return f"{rf.name} (daily returns of that series)"
    return f"{float(rf):.2%}/yr"


def metrics(returns: pd.Series, turnover: float = 0.0, rf=0.0) -> dict[str, float]:
    """quantstats' CAGR, Sharpe, Sortino, max drawdown, volatility (annualised, 252 days), Calmar,
    plus mean daily turnover, hit rate (share of days with a positive return), total return.
    Sharpe and Sortino are of the returns in excess of the risk-free rate `rf` (an annual rate,
    or a cash-like price series: see `rf_daily`)."""
    import quantstats as qs

    values = pd.to_numeric(pd.Series(returns), errors="coerce")
    if np.isinf(values.to_numpy(dtype=float)).any():
        raise ValueError(f"returns hold {int(np.isinf(values).sum())} infinite value(s) (first on "
                         f"{values.index[np.isinf(values.to_numpy(dtype=float))][0]}): metrics need finite returns")
    r = values.dropna()
    if len(r) == 0:
        what = "no rows" if len(values) == 0 else f"{len(values)} rows, all NaN or not numbers"
        raise ValueError(f"returns have {what}: metrics need at least one finite daily return")
    excess = r - rf_daily(rf, r.index)
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


def metrics_table(backtests, rf=0.0) -> pd.DataFrame:
    """One row per backtest (Sharpe and Sortino in excess of the annual risk-free rate `rf`)."""
    return pd.DataFrame({b.name: metrics(b.returns, b.turnover, rf) for b in backtests}).T[METRICS]
