"""A planted market: synthetic prices with a known, simple, exploitable signal.

A learner is proven here before any claim on real data. Every asset's daily return is a slowly
varying hidden drift plus noise,

    m[t] = φ·m[t-1] + s·sqrt(1 − φ²)·η[t],     R[t] = m[t] + σ·ε[t],     η, ε ~ N(0, 1) iid,

so the drift persists for about 1/(1 − φ) days and the trailing mean return predicts tomorrow's
return (time-series momentum). The reflection R -> -R is an exact symmetry of this market in
distribution (the drift is zero-mean), and so is permuting the assets (they are iid).

The known answer is `momentum_weights`: long the assets whose trailing mean return is positive,
short the others, gross exposure 1. Its out-of-sample Sharpe on a split is what an agent must
approach (`eqtrade.backtest.planted.rule_sharpe`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def planted_market(n_assets: int = 10, start: str = "1999-01-01", end: str = "2022-12-28", seed: int = 0,
                   phi: float = 0.98, drift_sd: float = 0.002, noise_sd: float = 0.012) -> pd.DataFrame:
    """Wide adjusted-close frame (business days, tickers P00..) of the planted momentum market."""
    if n_assets < 1:
        raise ValueError(f"n_assets must be >= 1, got {n_assets}")
    if not 0 <= phi < 1:
        raise ValueError(f"phi must be in [0, 1), got {phi}")
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range(start, end, name="date")
    T = len(dates)
    m = np.empty((T, n_assets))
    m[0] = drift_sd * rng.standard_normal(n_assets)
    shocks = drift_sd * np.sqrt(1 - phi**2) * rng.standard_normal((T, n_assets))
    for t in range(1, T):
        m[t] = phi * m[t - 1] + shocks[t]
    R = m + noise_sd * rng.standard_normal((T, n_assets))
    R[0] = 0.0
    prices = 100.0 * np.cumprod(1.0 + R, axis=0)
    return pd.DataFrame(prices, index=dates, columns=[f"P{i:02d}" for i in range(n_assets)])


def momentum_weights(prices: pd.DataFrame, lookback: int = 32) -> pd.DataFrame:
    """The known rule: sign of the trailing `lookback`-day mean return per asset, gross 1 (decided
    at each close from returns up to and including that day)."""
    R = prices.pct_change().fillna(0.0)
    s = np.sign(R.rolling(lookback, min_periods=1).mean())
    return s / prices.shape[1]
