"""Backtests of agents and baselines: rollouts, a vectorised engine, quantstats metrics, reports."""

from .baselines import BASELINE_KINDS, named_baselines
from .engine import BASELINES, Backtest, baseline, baseline_weights, decision_days, rollout, weights_backtest
from .metrics import METRICS, metrics, metrics_table
from .report import backtest_run, backtest_strategy, compare_runs, write_report

__all__ = ["BASELINES", "BASELINE_KINDS", "Backtest", "METRICS", "backtest_run", "backtest_strategy", "baseline", "baseline_weights",
           "compare_runs", "decision_days", "metrics", "metrics_table", "named_baselines", "rollout", "weights_backtest", "write_report"]
