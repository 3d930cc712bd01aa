"""The one rollout loop: a policy (observation -> action) over an env, for agent evaluations,
backtests and the dm_control suite alike."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import gymnasium as gym


@dataclass
class Episode:
    """One episode: actions[k] taken after infos[k] (infos[0] is the reset's), rewards[k] and
    infos[k + 1] what step k returned; `terminated` says whether it ended by termination."""

    actions: list = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    infos: list[dict] = field(default_factory=list)
    terminated: bool = False

    @property
    def total(self) -> float:
        return float(sum(self.rewards))

    def __len__(self) -> int:
        return len(self.rewards)


def rollout(policy: Callable[[Any], Any], env: gym.Env, seed: int | None = None,
            options: dict | None = None, max_steps: int | None = None) -> Episode:
    """Run `policy` over one episode of `env` from `env.reset(seed=seed, options=options)`."""
    return rollout_many(lambda obs: [policy(obs[0])], [env], seed, options, max_steps)[0]


def rollout_many(policy: Callable[[Any], Any], envs: list[gym.Env], seed: int | None = None,
                 options: dict | None = None, max_steps: int | None = None) -> list[Episode]:
    """One episode of each env, stepped together: `policy` maps a stack of observations
    [K, *obs] to actions [K, *action] (a stack of runs' policies; `rollout` is K = 1); envs that
    finish early wait (their rows of the stack are still computed, and ignored)."""
    import numpy as np

    eps, obs = [], []
    for env in envs:
        o, info = env.reset(seed=seed, options=options)
        obs.append(o)
        eps.append(Episode(infos=[info]))
    active = [True] * len(envs)
    while any(active) and (max_steps is None or len(eps[0]) < max_steps):
        actions = policy(np.stack(obs))
        for k, env in enumerate(envs):
            if not active[k]:
                continue
            o, r, term, trunc, info = env.step(actions[k])
            eps[k].actions.append(actions[k])
            eps[k].rewards.append(float(r))
            eps[k].infos.append(info)
            obs[k] = o
            if term or trunc:
                eps[k].terminated = bool(term)
                active[k] = False
    return eps


def evaluate_policy(policy: Callable[[Any], Any], env: gym.Env, episodes: int, seed: int = 10_000) -> list[Episode]:
    """`episodes` rollouts with seeded resets (seed, seed + 1, ...)."""
    return [rollout(policy, env, seed=seed + k) for k in range(episodes)]


def mean_return(episodes: list[Episode]) -> float:
    """Mean undiscounted return of a list of episodes (every reward summed in order, then divided:
    the same floating-point sum however the episodes are split)."""
    return sum(r for e in episodes for r in e.rewards) / len(episodes) if episodes else float("nan")
