"""The one env factory: an `EnvSpec` (id + keyword arguments) -> a gymnasium env with its
observation wrappers, and the env-id vocabulary (which ids are trading, dm_control, pixels)
defined once for the whole package."""

from __future__ import annotations

from dataclasses import dataclass, field

import gymnasium as gym

from ..symmetry import Symmetry, cartpole_discrete_reflection, pendulum_reflection

#: the trading envs: they have splits, turnover and normalised observations
TRADING_IDS = ("portfolio", "trading")
DMC_PREFIX = "dmc/"
PIXELS_PREFIX = "dmc-pixels/"

#: symmetries of gymnasium's own tasks (the learning checks use them); attached by `make_env`
KNOWN_SYMMETRIES = {"Pendulum-v1": pendulum_reflection, "CartPole-v1": cartpole_discrete_reflection}


def is_trading(env_id: str) -> bool:
    """A trading env id (portfolio, trading)."""
    return env_id in TRADING_IDS


def is_pixels(env_id: str) -> bool:
    """A dm_control task observed from pixels (dmc-pixels/DOMAIN-TASK)."""
    return env_id.startswith(PIXELS_PREFIX)


def is_dmc(env_id: str) -> bool:
    """A dm_control task, from states or pixels."""
    return env_id.startswith(DMC_PREFIX) or is_pixels(env_id)


def task_name(env_id: str) -> str:
    """DOMAIN-TASK of a dm_control id (the id itself otherwise)."""
    return env_id.removeprefix(PIXELS_PREFIX).removeprefix(DMC_PREFIX)


class WithSymmetry(gym.Wrapper):
    """Declares a known symmetry on an env that does not declare its own (gymnasium's tasks)."""

    def __init__(self, env: gym.Env, symmetry: Symmetry):
        super().__init__(env)
        self.symmetry = symmetry


@dataclass
class EnvSpec:
    """Which environment to train on: `portfolio`, `trading`, a dm_control id or any gymnasium
    id, plus keyword arguments; `eval_kwargs` override them for the evaluation env. A checkpoint
    stores this (never the env itself)."""

    id: str = "portfolio"
    kwargs: dict = field(default_factory=dict)
    eval_kwargs: dict = field(default_factory=dict)

    def make(self, evaluation: bool = False) -> gym.Env:
        return make_env(self.id, **dict(self.kwargs, **(self.eval_kwargs if evaluation else {})))

    def to_dict(self) -> dict:
        return {"id": self.id, "kwargs": dict(self.kwargs), "eval_kwargs": dict(self.eval_kwargs)}


def make_env(env_id: str, **kwargs) -> gym.Env:
    """An env by id, with the observation wrappers its keyword arguments ask for
    (`obs_noise`: Gaussian noise on the observation; see eqtrade.envs.wrappers)."""
    noise = kwargs.pop("obs_noise", 0.0)
    noise_seed = kwargs.pop("noise_seed", 0)
    if env_id == "portfolio":
        from .portfolio import PortfolioEnv

        env: gym.Env = PortfolioEnv(**kwargs)
    elif env_id == "trading":
        from .trading import TradingEnv

        env = TradingEnv(**kwargs)
    else:
        try:
            env = gym.make(env_id, **kwargs)
        except gym.error.Error as e:
            raise ValueError(f"unknown environment {env_id!r}: use portfolio, trading, dmc/DOMAIN-TASK, "
                             f"dmc-pixels/DOMAIN-TASK or a gymnasium id ({e})") from e
        if env_id in KNOWN_SYMMETRIES and getattr(env.unwrapped, "symmetry", None) is None:
            env = WithSymmetry(env, KNOWN_SYMMETRIES[env_id]())
    if noise:
        from .wrappers import ObservationNoise

        env = ObservationNoise(env, float(noise), seed=int(noise_seed))
    return env
