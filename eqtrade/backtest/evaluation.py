"""The trading evaluation callback: during training, the validation split's return, annualised
Sharpe and turnover, and the training split walked over its full period beside them (the
generalisation gap); best.pt is kept by validation return."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..agents.callbacks import EvalCallback
from ..envs.factory import EnvSpec
from ..envs.rollout import Episode

#: by default the training split is walked at every 5th evaluation: it is 4-5x longer than the
#: validation split, so walking it at every evaluation cost more than the validation itself
TRAIN_EVAL_EVERY = 5


def episode_stats(episodes: list[Episode]) -> dict[str, float]:
    """Mean return, and over all steps pooled the annualised Sharpe of the book's daily simple
    returns (from its value, as the backtests' Sharpe) and the mean daily turnover."""
    from ..envs.rollout import mean_return

    out = {"return": mean_return(episodes)}
    turnover = [float(i["turnover"]) for e in episodes for i in e.infos[1:] if "turnover" in i]
    if turnover:
        # the book's daily simple returns, from its value (the backtests' definition; never the
        # rewards, which may carry a training-only penalty); rf = 0 here, so they are excess returns
        r = np.asarray([v1 / v0 - 1.0 if v0 > 0 else 0.0 for e in episodes
                        for v0, v1 in zip((i["value"] for i in e.infos[:-1]), (i["value"] for i in e.infos[1:]))])
        sd = r.std(ddof=1) if len(r) > 1 else 0.0
        out["sharpe"] = float(r.mean() / sd * math.sqrt(252)) if sd > 0 else 0.0
        out["turnover"] = float(np.mean(turnover))
    return out


class TradingEvalCallback(EvalCallback):
    """EvalCallback for the trading envs: valid split (the evaluation env) return, Sharpe and
    turnover; the train split (`spec`'s, over its full period, one episode) beside them at every
    `train_every`-th evaluation (0: never; its columns are empty at the others)."""

    eval_columns = ("eval_return", "eval_sharpe", "eval_turnover", "train_return", "train_sharpe", "train_turnover")

    def __init__(self, spec: EnvSpec, train_every: int = TRAIN_EVAL_EVERY, **kw):
        super().__init__(**kw)
        self.spec, self.train_every = spec, int(train_every)
        self.train_env = None  # built on first use

    def _train_env(self):
        if self.train_env is None:
            kw = self.spec.evaluation_kwargs(split=self.spec.kwargs.get("split", "train"), full_period=True)
            self.train_env = EnvSpec(self.spec.id, kw).make()
        return self.train_env

    def plan(self, agent) -> list[tuple[str, Any, int]]:
        plan = super().plan(agent)
        if self.train_every and self.every and (agent.step // self.every) % self.train_every == 0:
            plan.append(("train", self._train_env(), 10_000))
        return plan

    def summarize(self, agent, episodes: dict[str, list[Episode]]) -> dict[str, Any]:
        ev = episode_stats(episodes["eval"])
        row: dict[str, Any] = {"eval_return": ev["return"]}
        if "sharpe" in ev:
            row.update(eval_sharpe=ev["sharpe"], eval_turnover=ev["turnover"])
        if "train" in episodes:
            tr = episode_stats(episodes["train"])
            row.update(train_return=tr["return"], train_sharpe=tr.get("sharpe"), train_turnover=tr.get("turnover"))
        return row
