"""The planted market's known answer, backtested: what an agent must approach on it
(`eqtrade.data.synthetic` makes the market and the rule's weights)."""

from __future__ import annotations

import pandas as pd

from ..data.synthetic import momentum_weights
from .engine import decision_days, weights_backtest
from .metrics import metrics


def rule_sharpe(prices: pd.DataFrame, split, window: int = 32, cost_bps: float = 10.0, lookback: int = 32) -> dict:
    """Out-of-sample Sharpe and mean daily turnover of `momentum_weights` over a split's decision
    days, with the backtests' own engine and costs."""
    days = decision_days(prices, split, window)
    w = momentum_weights(prices, lookback).loc[days]
    bt = weights_backtest(prices, w, cost_bps, "drift", "momentum rule")
    return {"sharpe": metrics(bt.returns)["Sharpe"], "turnover": bt.turnover}
