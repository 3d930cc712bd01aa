"""TradingEnv: one asset, discrete positions {short, flat, long}, log-growth reward with costs."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from ..data.market import Market, resolve_prices
from ..symmetry import Symmetry, single_asset_reflection
from .portfolio import FILLS, NOT_STARTED, OVER_RUINED, OVER_TRUNCATED, RUIN_REWARD, borrow_rate
from .protocol import ExactReward, check_env_choices, check_env_options, rng_from_state, rng_state

POSITIONS = (-1.0, 0.0, 1.0)  # action 0 = short, 1 = flat, 2 = long


class TradingEnv(gym.Env):
    """Trade one asset with a position p in {-1, 0, +1} of the portfolio value.

    The asset is `ticker` if given, else drawn at random from the panel at every reset.
    Observation (float64): the last `window` simple returns of the asset (oldest first), then p;
    the env factory normalises the returns by their trailing volatility as for PortfolioEnv
    (`eqtrade.envs.wrappers.VolatilityNormalized`; `return_window` is its hook).
    Reward: log(1 + p·R[t+1] − c·|p − p_prev| − b·max(−p, 0)); timing (`fill`: "close" or
    "next_close", whose window ends the day before the fill), the borrow fee b (`borrow_bps`), ruin
    and episodes as in PortfolioEnv. The position is held at its target (no drift), so the
    observation's position is the book in both fills.
    """

    metadata = {"render_modes": []}

    def __init__(self, prices=None, ticker: str | None = None, window: int = 32, split="train",
                 cost_bps: float = 10.0, episode_length: int = 252, full_period: bool = False, data_dir=None,
                 fill: str = "close", borrow_bps: float = 0.0):
        check_env_options(window=window, cost_bps=cost_bps, episode_length=episode_length, borrow_bps=borrow_bps)
        check_env_choices(fill=fill)
        self.fill, self.lag, self.borrow = fill, FILLS.index(fill), borrow_rate(borrow_bps)
        if not isinstance(full_period, (bool, np.bool_)):
            raise TypeError(f"full_period must be true or false, got {full_period!r}")
        panel = resolve_prices(prices, None, data_dir)
        if ticker is not None:
            if ticker not in panel.columns:
                raise ValueError(f"ticker {ticker!r} not in the panel ({', '.join(map(str, panel.columns))})")
            panel = panel[[ticker]]
        self.market = Market.from_prices(panel, window + self.lag, split)
        self.tickers = self.market.tickers
        self.window, self.cost = window, cost_bps / 1e4
        self.episode_length, self.full_period = int(episode_length), full_period
        self.observation_space = spaces.Box(-np.inf, np.inf, (window + 1,), dtype=np.float64)
        self.action_space = spaces.Discrete(3)
        # one contiguous return series per asset: windows are slices, no copies per step
        self._series = np.ascontiguousarray(self.market.returns.T)
        self._lists = [row.tolist() for row in self._series]  # python floats for the reward arithmetic
        self._asset = 0
        self._r = self._series[0]
        self._rl = self._lists[0]
        self._t = self.market.first
        self._end = self.market.last
        self._p = 0.0
        self.value = 1.0
        self._over: str | None = NOT_STARTED  # why step() must not run now (None: an episode is running)
        self._last_return: float | None = None  # the realised return of the last step (ExactReward's extra)
        self.exact_reward = TradingExactReward(self)

    def episode_state(self) -> dict:
        """The episode in progress as plain data (see eqtrade.envs.protocol)."""
        return {"asset": self._asset, "t": self._t, "end": self._end, "p": self._p, "value": self.value,
                "np_random": rng_state(self._np_random)}

    def restore_episode(self, s: dict) -> None:
        self._asset = int(s["asset"])
        self._r, self._rl = self._series[self._asset], self._lists[self._asset]
        self._t, self._end, self._p, self.value = int(s["t"]), int(s["end"]), float(s["p"]), float(s["value"])
        self._np_random = rng_from_state(s["np_random"])
        self._over = None if self._t <= self._end else OVER_TRUNCATED

    @property
    def symmetry(self) -> Symmetry:
        """C2 reflection: returns -> -returns, position -> -position, short <-> long."""
        return single_asset_reflection(self.window)

    def return_window(self, table: np.ndarray) -> np.ndarray:
        """`table` ([T, N], aligned with `market.returns`) over the current window of the asset
        traded: an observation wrapper shows a transform of the returns with it."""
        t = self._t - self.lag
        return table[t - self.window + 1 : t + 1, self._asset]

    @property
    def ticker(self) -> str:
        return self.tickers[self._asset]

    def _obs(self) -> np.ndarray:
        obs = np.empty(self.window + 1)
        t = self._t - self.lag
        obs[:-1] = self._series[self._asset, t - self.window + 1 : t + 1]
        obs[-1] = self._p
        return obs

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        m = self.market
        opts = options or {}
        self._asset = int(opts.get("asset", self.np_random.integers(0, len(self.tickers)) if len(self.tickers) > 1 else 0))
        self._r, self._rl = self._series[self._asset], self._lists[self._asset]
        if self.full_period:
            self._t, self._end = m.first, m.last
        else:
            length = min(self.episode_length, m.n_days)
            start = opts.get("start")
            if start is None:
                start = m.first + int(self.np_random.integers(0, m.n_days - length + 1))
            self._t, self._end = int(start), int(start) + length - 1
        self._p = 0.0
        self.value = 1.0
        self._over = None
        return self._obs(), {"date": m.date_list[self._t], "position": 0.0, "value": 1.0, "ticker": self.ticker}

    def step(self, action):
        if self._over is not None:
            raise RuntimeError(f"{type(self).__name__}: {self._over}")
        if action.__class__ is not int:  # numpy ints, 0-d arrays; reject 1.5, NaN, "long", ...
            try:
                a = int(action)
                if a != action:
                    raise ValueError
            except (TypeError, ValueError):
                raise ValueError(f"action must be 0 (short), 1 (flat) or 2 (long), got {action!r}") from None
            action = a
        if not 0 <= action <= 2:
            raise ValueError(f"action must be 0 (short), 1 (flat) or 2 (long), got {action!r}")
        p = POSITIONS[action]
        turnover = abs(p - self._p)
        cost = self.cost * turnover
        borrow = self.borrow * -p if p < 0 else 0.0  # the fee on the short held over the day, in cash as costs
        self._t = t = self._t + 1
        self._last_return = self._rl[t]
        growth = 1.0 + p * self._rl[t] - cost - borrow
        if growth <= 1e-4:  # ruin; log(1e-4) = RUIN_REWARD is the worst reward
            self.value, self._p = 0.0, 0.0
            self._over = OVER_RUINED
            info = {"date": self.market.date_list[t], "ticker": self.tickers[self._asset], "cost": cost,
                    "borrow": borrow, "turnover": turnover, "position": 0.0, "value": 0.0, "ruined": True,
                    "target_weights": np.array([p])}
            return self._obs(), RUIN_REWARD, True, False, info
        self.value *= growth
        self._p = p
        info = {"date": self.market.date_list[t], "ticker": self.tickers[self._asset], "cost": cost,
                "borrow": borrow, "turnover": turnover, "position": p, "value": self.value, "target_weights": np.array([p])}
        if t > self._end:
            self._over = OVER_TRUNCATED
            return self._obs(), math.log(growth), False, True, info
        return self._obs(), math.log(growth), False, False, info


class TradingExactReward(ExactReward):
    """The single-asset env's full-information reward: the market does not react to the position,
    so one stored transition tells the reward and the next state of all three actions (DQN's
    `targets = "exact"`). Extras of a transition: the asset's realised next simple return. The
    next observation is `next_obs` with the position replaced by the action's; an action whose
    growth would be <= 1e-4 gets RUIN_REWARD, position 0 and alive = 0, as in `step`."""

    extra_dim = 1

    def __init__(self, env: TradingEnv):
        self.cost, self.borrow = env.cost, env.borrow
        self._env = env

    def last_extras(self) -> np.ndarray:
        if self._env._last_return is None:
            raise RuntimeError("no transition yet: call step() first")
        return np.array([self._env._last_return])

    def __call__(self, obs, action, extras, next_obs):
        """Torch: (log growth [B], next observation [B, window + 1], alive [B]) of the actions
        `action` ([B] indices: 0 short, 1 flat, 2 long) in `obs` when the next day's simple return
        is `extras` [B, 1]."""
        import torch

        if extras.shape[-1] != self.extra_dim:
            raise ValueError(f"extras have {extras.shape[-1]} columns, this env's have {self.extra_dim}")
        p = torch.as_tensor(POSITIONS, dtype=obs.dtype, device=obs.device)[action.long()]
        growth = 1.0 + p * extras[:, 0] - self.cost * (p - obs[:, -1]).abs()
        if self.borrow:
            growth = growth - self.borrow * (-p).clamp(min=0.0)
        alive = growth > 1e-4
        reward = torch.log(growth.clamp(min=1e-4))  # = RUIN_REWARD where not alive
        held = torch.where(alive, p, torch.zeros_like(p))
        return reward, torch.cat([next_obs[:, :-1], held[:, None]], dim=1), alive.to(reward.dtype)
