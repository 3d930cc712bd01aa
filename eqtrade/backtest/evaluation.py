"""The trading evaluation callback: during training, the validation split's return, annualised
Sharpe and turnover, and the training split walked over its full period beside them (the
generalisation gap); best.pt is kept by validation return."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..agents.callbacks import EvalCallback
from ..envs.factory import EnvSpec
from ..envs.rollout import Episode, evaluate_policy, rollout


def episode_stats(episodes: list[Episode]) -> dict[str, float]:
    """Mean return, and over all steps pooled the annualised Sharpe of the daily simple returns
    (from the log-growth rewards, as the backtests' Sharpe) and the mean daily turnover."""
    from ..envs.rollout import mean_return

    rewards = np.asarray([r for e in episodes for r in e.rewards], dtype=float)
    out = {"return": mean_return(episodes)}
    turnover = [float(i["turnover"]) for e in episodes for i in e.infos[1:] if "turnover" in i]
    if turnover:
        r = np.expm1(rewards)
        sd = r.std(ddof=1) if len(r) > 1 else 0.0
        out["sharpe"] = float(r.mean() / sd * math.sqrt(252)) if sd > 0 else 0.0
        out["turnover"] = float(np.mean(turnover))
    return out


class TradingEvalCallback(EvalCallback):
    """EvalCallback for the trading envs: valid split (the evaluation env) return, Sharpe and
    turnover; the train split (`spec`'s, over its full period, one episode) beside them."""

    eval_columns = ("eval_return", "eval_sharpe", "eval_turnover", "train_return", "train_sharpe", "train_turnover")

    def __init__(self, spec: EnvSpec, **kw):
        super().__init__(**kw)
        self.spec = spec
        self.train_env = None  # built on first use

    def _train_env(self):
        if self.train_env is None:
            kw = dict(self.spec.kwargs, **self.spec.eval_kwargs)
            kw.update(split=self.spec.kwargs.get("split", "train"), full_period=True)
            self.train_env = EnvSpec(self.spec.id, kw).make()
        return self.train_env

    def evaluate(self, agent) -> dict[str, Any]:
        ev = episode_stats(evaluate_policy(agent.policy(), self.env, self.episodes))
        row: dict[str, Any] = {"eval_return": ev["return"]}
        if "sharpe" in ev:
            row.update(eval_sharpe=ev["sharpe"], eval_turnover=ev["turnover"])
        tr = episode_stats([rollout(agent.policy(), self._train_env(), seed=10_000)])
        row.update(train_return=tr["return"], train_sharpe=tr.get("sharpe"), train_turnover=tr.get("turnover"))
        return row
