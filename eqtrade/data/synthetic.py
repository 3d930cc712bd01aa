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



def volatility_market(n_assets: int = 10, start: str = "1900-01-01", end: str = "2022-12-28", seed: int = 0,
                      calm_vol: float = 0.01, storm_vol: float = 0.04, calm_mu: float = 0.0006,
                      storm_mu: float = 0.0, calm_stay: float = 0.996, storm_stay: float = 0.99,
                      rho: float = 0.5) -> pd.DataFrame:
    """A planted market where only volatility timing pays: a hidden market regime, calm or stormy,
    persists (a two-state Markov chain: it stays calm with probability `calm_stay` a day, stormy
    with `storm_stay`: about 250 and 100 days), and sets every asset's volatility and expected
    return together,

        R_i[t] = mu[s_t] + vol[s_t]·(sqrt(ρ)·f[t] + sqrt(1 − ρ)·ε_i[t]),   f, ε ~ N(0, 1) iid,

    calm: vol `calm_vol`, expected return `calm_mu` > 0; stormy: vol `storm_vol` (4x), expected
    return `storm_mu` (0: expected returns do not rise with volatility, Moreira & Muir 2017). The
    regime is revealed only by the volatility level: nothing predicts which asset or which sign
    does better. A book that holds less when the trailing volatility is high (the volatility-
    managed rule, `eqtrade.backtest.baselines` "volman") beats constant exposure, and so does a
    log-growth maximiser that sees the level (the storm only adds variance). A policy that sees
    only returns over their own trailing volatility (the exact scale family) is blind to the
    level: it sees a change of regime only while its trailing window still straddles it.
    Permuting the assets is an exact symmetry; the reflection is not (calm_mu > 0)."""
    if n_assets < 1:
        raise ValueError(f"n_assets must be >= 1, got {n_assets}")
    for name, v in (("calm_stay", calm_stay), ("storm_stay", storm_stay), ("rho", rho)):
        if not 0 <= v <= 1:
            raise ValueError(f"{name} must be in [0, 1], got {v}")
    if not (calm_vol > 0 and storm_vol > 0):
        raise ValueError(f"volatilities must be > 0, got calm {calm_vol}, storm {storm_vol}")
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range(start, end, name="date")
    T = len(dates)
    storm = _regimes(rng.random(T), calm_stay, storm_stay)
    vol = np.where(storm, storm_vol, calm_vol)
    mu = np.where(storm, storm_mu, calm_mu)
    f = rng.standard_normal(T)
    eps = rng.standard_normal((T, n_assets))
    R = mu[:, None] + vol[:, None] * (np.sqrt(rho) * f[:, None] + np.sqrt(1 - rho) * eps)
    R[0] = 0.0
    prices = 100.0 * np.cumprod(1.0 + R, axis=0)
    out = pd.DataFrame(prices, index=dates, columns=[f"V{i:02d}" for i in range(n_assets)])
    out.attrs["storm"] = storm  # the hidden regime, for checks (not part of the prices)
    return out


def _regimes(u: np.ndarray, calm_stay: float, storm_stay: float) -> np.ndarray:
    """The two-state chain from uniforms: storm[t] from storm[t-1] and u[t] (starts calm)."""
    storm = np.zeros(len(u), dtype=bool)
    for t in range(1, len(u)):
        storm[t] = u[t] < storm_stay if storm[t - 1] else u[t] >= calm_stay
    return storm
