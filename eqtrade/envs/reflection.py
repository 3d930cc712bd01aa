"""How far the portfolio env's accounting is from the reflection R -> -R, measured on the env.

The reflection negates every daily return and every weight. On mirrored data (prices whose daily
returns are the negated originals) the reflected policy earns exactly the same reward under the
"target" cost model (turnover Σ|w_t − w_{t−1}| is the same for −w). Under the broker's "drift"
model (the default everywhere) the trade starts from the weights after their drift,
w·(1+R)/(1+w·R), which do not negate with w and R, so the reflection holds only approximately: the
per-step reward gap is at most about 2c·Σ|w_i R_i|. `reflection_cost_gap` measures that gap on a
split for random long/short targets (what `eqtrade symmetry` prints).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def mirrored(prices: pd.DataFrame) -> pd.DataFrame:
    """Prices whose daily simple returns are the negated originals (same first price)."""
    r = prices.pct_change(fill_method=None).fillna(0.0).to_numpy()
    return pd.DataFrame(prices.iloc[0].to_numpy() * np.cumprod(1 - r, axis=0), index=prices.index,
                        columns=prices.columns)


def reflection_cost_gap(prices: pd.DataFrame, split, window: int = 32, cost_bps: float = 10.0,
                        cost_model: str = "drift", steps: int = 500, seed: int = 0) -> dict:
    """Reward gap |r(s, a) − r(g·s, g·a)| of the long/short portfolio env under the reflection g on
    mirrored data, for `steps` random targets (uniform in [-1, 1] per asset) from the split's
    start: mean and max of the gap, its mean relative to the mean |reward|, and the mean cost per
    step for scale. 0 to machine precision under cost_model "target"."""
    from .portfolio import PortfolioEnv

    prices = prices.dropna()
    if prices.shape[1] < 2:
        raise ValueError(f"the reflection cost gap needs a portfolio of at least 2 assets, got {prices.shape[1]}")
    envs = [PortfolioEnv(prices=p, window=window, split=split, cost_bps=cost_bps, full_period=True,
                         cost_model=cost_model, mode="long_short") for p in (prices, mirrored(prices))]
    sym = envs[0].symmetry
    g = 1  # the reflection: the group element that negates returns and weights
    acts = np.random.default_rng(seed).uniform(-1, 1, size=(steps, prices.shape[1]))
    for e in envs:
        e.reset(seed=seed)
    gaps, rewards, costs = [], [], []
    for a in acts:
        _, r1, t1, u1, i1 = envs[0].step(a)
        _, r2, t2, u2, _ = envs[1].step(sym.transform_action(a, g))
        gaps.append(abs(r1 - r2))
        rewards.append(abs(r1))
        costs.append(cost_bps / 1e4 * i1.get("turnover", 0.0))
        if t1 or u1 or t2 or u2:
            break
    gaps = np.asarray(gaps)
    return {"cost_model": cost_model, "steps": len(gaps), "mean |Δr|": float(gaps.mean()),
            "max |Δr|": float(gaps.max()), "mean |Δr| / mean |r|": float(gaps.mean() / max(np.mean(rewards), 1e-300)),
            "mean cost per step": float(np.mean(costs))}
