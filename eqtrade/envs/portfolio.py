"""PortfolioEnv: N assets + cash, continuous weights, daily log-growth reward with costs."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from ..data.market import Market, resolve_prices
from ..symmetry import AssetAxis, ScaleAxis, Symmetry, portfolio_reflection
from .protocol import ExactReward, check_env_choices, check_env_options, rng_from_state, rng_state

#: reward of a step whose growth factor would be <= 1e-4 (the value falls to 0.01% of its level
#: or below zero): log(1e-4), the worst reward any step can give; the episode terminates (never
#: a log of <= 0)
RUIN_REWARD = math.log(1e-4)

MODES = ("long_short", "long_only")
#: when an order fills: "close" (at the close it is decided on) or "next_close" (one day of lag)
FILLS = ("close", "next_close")
#: trading days per year: an annual borrow fee in bps is charged as borrow_bps / 1e4 / DAYS_PER_YEAR a day
DAYS_PER_YEAR = 252


def borrow_rate(borrow_bps: float) -> float:
    """The daily fee per unit of short weight held of an annual fee in basis points."""
    return float(borrow_bps) / 1e4 / DAYS_PER_YEAR

#: why a trading env refuses step(): before the first reset(), and after the episode ended
NOT_STARTED = "call reset() before step()"
OVER_TRUNCATED = "the episode is over (truncated after its last day): call reset() to start another"
OVER_RUINED = "the episode is over (terminated: the portfolio was ruined): call reset() to start another"


def _check_action(action, shape) -> np.ndarray:
    a = np.asarray(action, dtype=np.float64)
    if a.shape != shape:
        if a.size == int(np.prod(shape)):
            a = a.reshape(shape)
        else:
            raise ValueError(f"action has shape {a.shape}, expected {shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"action contains NaN/inf: {a[~np.isfinite(a)][:5]} at positions {np.flatnonzero(~np.isfinite(a))[:5]}")
    return a


class PortfolioEnv(gym.Env):
    """Allocate over N assets and cash every trading day.

    Observation (float64, flat): the last `window` daily simple returns of every asset,
    time-major (oldest day first: obs[t*N + i]), then the N asset weights held going into the
    decision (after the previous day's drift; with fill "next_close" the target filled the day
    before, see Timing). Prices enter only through returns, so scaling
    any asset's prices leaves every observation unchanged. The env shows raw simple returns; the
    env factory (`make_env("portfolio", normalize=True)`, the default there and in `eqtrade
    train`) wraps it in `eqtrade.envs.wrappers.VolatilityNormalized`, which divides each return
    by its asset's causal trailing volatility and clips it (`return_window` is its hook).

    Action: mode "long_short": a in [-1, 1]^N, weights w = a / max(1, Σ|a|) (gross exposure
    <= 1, the rest in cash; `action_map = "normalize"`, the default), or w = a / N
    (`action_map = "per_asset"`: each asset's action is its share of an equal-weight book, so the
    gross exposure moves smoothly with every action; with "normalize" the weights do not change
    when all actions grow or shrink together past Σ|a| = 1, so a gradient never says "hold less"); mode "long_only": a in [-1, 1]^(N+1) (last = cash),
    weights (a+1)/Σ(a+1) on the simplex (all cash if every a = -1). Out-of-range actions are
    clipped; NaN/inf or a wrong shape raise ValueError.

    Timing (`fill`): "close" (default): the decision at the close of day t sees returns up to and
    including t and its trades fill at the close of t (a market-on-close order);
    "next_close": one day of lag, the order decided overnight on the data up to t−1 fills at the
    close of t: the observation's returns end at t−1 and its weights part is the target filled at
    t−1 (before day t's drift, which would reveal day t's returns), while costs are charged on the
    true book at t (the weights after day t's drift). Either way the reward
    log(1 + w·R[t+1] − c·Σ|w − w_held| − b·Σ max(−w_i, 0)) is realised over t -> t+1.
    If that growth is <= 1e-4 the episode terminates with reward RUIN_REWARD (= log 1e-4).

    `borrow_bps` (default 0): the annual fee on the short weights held, charged each day as
    b = borrow_bps/1e4/252 on Σ max(−w_i, 0) of the target weights held over the day (in cash,
    as costs); long-only books pay nothing.

    Costs (`cost_model`): "drift" (default: what a broker charges, the same model in training,
    validation, backtests and the baselines) charges the true turnover from the drifted weights
    w·(1+R)/(1 + w·R) (shown in the observation; costs are paid in cash at the trade); drift is
    not odd in R, so the reflection R -> -R, w -> -w then holds only approximately on mirrored
    data, up to |Δreward| <= 2c·Σ|w_i R_i|/(1 + w·R) — a real, small source of asymmetry
    (`eqtrade symmetry` measures it). "target" charges c on the change of target weights,
    w_held = the previous decision's weights, and the observation shows those: the portfolio is
    rebalanced to its target every close for free, which keeps the reflection an exact symmetry
    of the MDP on mirrored data but is not what a broker charges.

    `turnover_penalty_bps` (default 0): a training-only regulariser on the same accounting: the
    reward is log(growth) − p·turnover, while the book (`info["value"]`) grows by `growth` only.
    Evaluation envs (`EnvSpec.make(evaluation=True)`), backtests and the baselines never carry it.

    `risk_aversion` κ (default 0): a second training-only term, −(κ/2)·r² on the step's net
    simple return r = growth − 1 (a mean-variance utility on top of the log growth, which is
    itself about r − r²/2): the optimal exposure of an asset with mean μ and variance σ² falls
    from μ/σ² to μ/((1 + κ)σ²), and the per-sample gradient of the penalty, −κ·r·∂r/∂w, always
    points toward holding less where returns are large, a signal with far less noise than the
    returns' own. Dropped from every evaluation env like the turnover penalty.

    Universes whose assets list late or delist early (`align="mask"`): an asset is tradable on
    day t when it has a price that day (known at t, no look-ahead); the action's components for
    untradable assets are ignored (weight 0), their returns in the observation are 0, and
    `info["tradable"]` gives the mask of the next decision. A position in an asset that delists is
    cash at its last price. With align="inner" (default) only the dates where every asset has a
    price are kept (a survivorship-biased universe).

    Episodes: random start and `episode_length` steps (truncated at the end), or
    `full_period=True`: the whole split from its first decision day, deterministically.
    """

    metadata = {"render_modes": []}

    def __init__(self, prices=None, window: int = 32, split="train", mode: str = "long_short",
                 cost_bps: float = 10.0, episode_length: int = 252, full_period: bool = False,
                 tickers=None, data_dir=None, cost_model: str = "drift", align: str = "inner",
                 turnover_penalty_bps: float = 0.0, fill: str = "close", borrow_bps: float = 0.0,
                 action_map: str = "normalize", risk_aversion: float = 0.0):
        if cost_model not in ("target", "drift"):
            raise ValueError(f"cost_model must be 'target' or 'drift', got {cost_model!r}")
        self.cost_model = cost_model
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        check_env_options(window=window, cost_bps=cost_bps, episode_length=episode_length,
                          turnover_penalty_bps=turnover_penalty_bps, borrow_bps=borrow_bps,
                          risk_aversion=risk_aversion)
        check_env_choices(fill=fill, action_map=action_map)
        if action_map != "normalize" and mode != "long_short":
            raise ValueError(f"action_map = {action_map!r} applies to long_short books; a long_only book's weights "
                             "are always (a + 1) / Σ(a + 1) over the assets and cash")
        self.action_map = action_map
        self.penalty = float(turnover_penalty_bps) / 1e4
        self.risk_aversion = float(risk_aversion)
        self.fill, self.borrow = fill, borrow_rate(borrow_bps)
        # days between the observation's last return and the fill (0: the close decided on)
        self.lag = FILLS.index(fill)
        if not isinstance(full_period, (bool, np.bool_)):
            raise TypeError(f"full_period must be true or false, got {full_period!r}")
        panel = resolve_prices(prices, tickers, data_dir, align)
        # a lagged window ends the day before the decision: one more day of history before it
        self.market = Market.from_prices(panel, window + self.lag, split)
        self.window, self.mode, self.cost = window, mode, cost_bps / 1e4
        self.episode_length, self.full_period = int(episode_length), full_period
        self.tickers = self.market.tickers
        n = len(self.tickers)
        self.n_assets = n
        self.observation_space = spaces.Box(-np.inf, np.inf, (window * n + n,), dtype=np.float64)
        k = n if mode == "long_short" else n + 1
        self.action_space = spaces.Box(-1.0, 1.0, (k,), dtype=np.float32)
        self._R = self.market.returns
        # what the observation shows: scaled returns (default) or the raw simple returns
        self._t = self.market.first
        self._end = self.market.last
        self._w = np.zeros(n)  # the book: weights held at the close of t, after the day's drift
        self._shown = self._w  # what the observation shows of it (next_close: the target filled at t−1)
        self.value = 1.0
        self._over: str | None = NOT_STARTED  # why step() must not run now (None: an episode is running)

        self._last_extras: np.ndarray | None = None
        self.exact_reward = PortfolioExactReward(self)

    # -- symmetry -------------------------------------------------------------------------------
    @property
    def symmetry(self) -> Symmetry | None:
        """C2 reflection (returns -> -returns, weights -> -weights) in long_short mode; None in
        long_only mode, where negating weights leaves the simplex (no reflection symmetry)."""
        if self.mode == "long_only":
            return None
        return portfolio_reflection(self.n_assets, self.window)

    @property
    def scale_axis(self) -> ScaleAxis:
        """Raw simple returns: under R -> c·R the return block is multiplied by c (the plain
        scale family; the env factory's normalisation makes it exact)."""
        return ScaleAxis("plain", multiply=tuple(range(self.window * self.n_assets)))

    @property
    def asset_axis(self) -> AssetAxis:
        """The N exchangeable assets: a window of W rows then one row of weights, one action per
        asset (in long_only mode the cash action follows), named by their tickers."""
        return AssetAxis(self.n_assets, (self.window, 1), names=tuple(self.tickers))

    # -- mechanics ------------------------------------------------------------------------------
    def tradable_now(self) -> np.ndarray | None:
        """[N] bool: which assets can be traded at the current decision; None when all, always."""
        tr = self.market.tradable
        return None if tr is None else tr[self._t]

    def weights_from_action(self, action) -> np.ndarray:
        """Target asset weights for an action (see class docstring)."""
        a = np.clip(_check_action(action, self.action_space.shape), -1.0, 1.0)
        mask = self.tradable_now()
        if self.mode == "long_short":
            if mask is not None:
                a = np.where(mask, a, 0.0)
            if self.action_map == "per_asset":
                return a / self.n_assets
            return a / max(1.0, float(np.abs(a).sum()))
        u = a + 1.0
        if mask is not None:
            u[:-1] = np.where(mask, u[:-1], 0.0)
        s = float(u.sum())
        return u[:-1] / s if s > 0 else np.zeros(self.n_assets)

    def _obs(self) -> np.ndarray:
        t, W = self.obs_day(), self.window
        return np.concatenate([self._R[t - W + 1 : t + 1].reshape(-1), self._shown])

    def return_window(self, table: np.ndarray) -> np.ndarray:
        """`table` ([T, N], aligned with `market.returns`) over the current decision's window
        (ending `lag` days before the fill), flattened as the observation's return block: an
        observation wrapper shows a transform of the returns with it
        (eqtrade.envs.wrappers.VolatilityNormalized)."""
        t = self.obs_day()
        return table[t - self.window + 1 : t + 1].reshape(-1)

    def obs_day(self) -> int:
        """The index (into `market.returns`) of the last return the current observation shows:
        the decision day, or the day before it with fill "next_close". Observation wrappers that
        add per-day features (`eqtrade.envs.wrappers.MarketFeatures`) read their row of it."""
        return self._t - self.lag

    def _info(self) -> dict:
        info = {"date": self.market.date_list[self._t], "weights": self._w.copy(), "value": self.value}
        mask = self.tradable_now()
        if mask is not None:
            info["tradable"] = mask.copy()
        return info

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        m = self.market
        if self.full_period:
            self._t, self._end = m.first, m.last
        else:
            length = min(self.episode_length, m.n_days)
            start = (options or {}).get("start")
            if start is None:
                start = m.first + int(self.np_random.integers(0, m.n_days - length + 1))
            elif not m.first <= int(start) <= m.last - length + 1:
                raise ValueError(f"start index {start} outside {m.first}..{m.last - length + 1}")
            self._t, self._end = int(start), int(start) + length - 1
        self._w = np.zeros(self.n_assets)
        self._shown = self._w
        self.value = 1.0
        self._over = None
        return self._obs(), self._info()

    def step(self, action):
        if self._over is not None:
            raise RuntimeError(f"{type(self).__name__}: {self._over}")
        w = self.weights_from_action(action)
        turnover = float(np.abs(w - self._w).sum())
        cost = self.cost * turnover
        borrow = self.borrow * float(np.maximum(-w, 0.0).sum()) if self.borrow else 0.0
        r = self._R[self._t + 1]
        gross = float(w @ r)
        growth = 1.0 + gross - cost - borrow
        info_extra = {"turnover": turnover, "cost": cost, "borrow": borrow, "target_weights": w.copy()}
        mask = self.tradable_now()
        # what `exact_reward` needs of this transition besides (obs, next_obs): the realised next
        # returns R[t+1], in a masked universe which assets could be traded at this decision, and
        # with a lagged fill the book traded from (the observation shows the target before drift)
        extras = [r] if mask is None else [r, mask.astype(float)]
        self._last_extras = np.concatenate(extras + [self._w] if self.lag else extras)
        self._t += 1
        if growth <= 1e-4:  # ruin (e.g. a full short through a +100% day); log(1e-4) is the worst reward
            self.value = 0.0
            self._w = self._shown = np.zeros(self.n_assets)
            self._over = OVER_RUINED
            info = self._info() | info_extra | {"ruined": True}
            return self._obs(), RUIN_REWARD, True, False, info
        self.value *= growth
        # weights held going into the next decision: the target, or the target after drift, relative
        # to the book before costs (costs are paid in cash at the trade): unchanged positions then
        # need no trade, e.g. buy & hold trades only once
        self._w = w if self.cost_model == "target" else w * (1.0 + r) / (1.0 + gross)
        if (mask := self.tradable_now()) is not None:  # a delisted position is cash: nothing left to trade
            self._w = np.where(mask, self._w, 0.0)
        # next_close: the next order is decided before the next day's drift is known
        self._shown = w if self.lag else self._w
        truncated = self._t > self._end
        if truncated:
            self._over = OVER_TRUNCATED
        reward = math.log(growth) - self.penalty * turnover if self.penalty else math.log(growth)
        if self.risk_aversion:
            reward -= 0.5 * self.risk_aversion * (growth - 1.0) ** 2
        return self._obs(), reward, False, truncated, self._info() | info_extra

    # -- resuming an episode (checkpoints) -----------------------------------------------------
    def episode_state(self) -> dict:
        """The episode in progress as plain data (see eqtrade.envs.protocol)."""
        return {"t": self._t, "end": self._end, "w": self._w.copy(), "shown": self._shown.copy(),
                "value": self.value, "np_random": rng_state(self._np_random)}

    def restore_episode(self, s: dict) -> None:
        self._t, self._end, self._w, self.value = int(s["t"]), int(s["end"]), np.array(s["w"]), float(s["value"])
        self._shown = np.array(s["shown"]) if "shown" in s else self._w
        self._np_random = rng_from_state(s["np_random"])
        self._over = None if self._t <= self._end else OVER_TRUNCATED


class PortfolioExactReward(ExactReward):
    """The portfolio env's full-information reward: the market does not react to the agent, so one
    stored transition tells the reward and the next state of every action, not only of the one taken.

    Extras of a transition: the N realised next returns, plus the N-asset tradable mask in a
    masked universe, plus (fill "next_close") the N weights of the book traded from (after the
    day's drift, which the observation does not show). The next observation is `next_obs` with
    the weights part replaced as the action would have left it: the new target (after drift in the
    "drift" cost model; before it with fill "next_close"). An action whose growth would be <= 1e-4
    gets RUIN_REWARD, zero weights and alive = 0 (the env ends the episode there), as in `step`;
    the borrow fee and the training-only turnover penalty and risk term are subtracted as in `step`."""

    def __init__(self, env: PortfolioEnv):
        self.n, self.mode, self.cost, self.cost_model = env.n_assets, env.mode, env.cost, env.cost_model
        self.action_map = env.action_map
        self.penalty, self.borrow, self.lag = env.penalty, env.borrow, env.lag
        self.risk_aversion = env.risk_aversion
        self.masked = env.market.tradable is not None
        self.extra_dim = env.n_assets * (1 + self.masked + self.lag)
        self.own_dim = env.n_assets  # the weights: the last N columns of every observation
        self._env = env

    def last_extras(self) -> np.ndarray:
        if self._env._last_extras is None:
            raise RuntimeError("no transition yet: call step() first")
        return self._env._last_extras

    def __call__(self, obs, action, next_returns, next_obs):
        """Torch, differentiable in `action`: (log growth, next observation, alive) of taking
        `action` in `obs` when the next day's simple returns are `next_returns` ([B, N], or
        [B, 2N] returns and tradable mask)."""
        import torch

        reward, new_held, alive = self.own(obs[:, -self.n :], action, next_returns)
        return reward, torch.cat([next_obs[:, : -self.n], new_held], dim=1), alive

    def own(self, held, action, next_returns):
        """`__call__` on the weights alone (the observation's last N columns, `own_dim`): (log
        growth, the next observation's weights, alive) of `action` from the book `held` shown."""
        import torch

        n = self.n
        mask = None
        extras = next_returns
        if next_returns.shape[1] != self.extra_dim:
            raise ValueError(f"extras have {next_returns.shape[1]} columns, this env's have {self.extra_dim}")
        next_returns = extras[:, :n]
        if self.masked:  # a masked universe: untradable assets get weight 0
            mask = extras[:, n : 2 * n]
        if self.mode == "long_short":
            a = action.clamp(-1.0, 1.0)
            a = a if mask is None else a * mask
            w = a / n if self.action_map == "per_asset" else a / a.abs().sum(1, keepdim=True).clamp(min=1.0)
        else:
            u = action.clamp(-1.0, 1.0) + 1.0
            if mask is not None:
                u = torch.cat([u[:, :n] * mask, u[:, n:]], dim=1)
            w = (u / u.sum(1, keepdim=True).clamp(min=1e-12))[:, :n]
        held = extras[:, -n:] if self.lag else held  # the book traded from
        turnover = (w - held).abs().sum(1)
        growth = 1.0 + (w * next_returns).sum(1) - self.cost * turnover
        if self.borrow:
            growth = growth - self.borrow * (-w).clamp(min=0.0).sum(1)
        alive = growth > 1e-4
        reward = torch.log(growth.clamp(min=1e-4))  # = RUIN_REWARD where not alive
        if self.penalty:
            reward = torch.where(alive, reward - self.penalty * turnover, reward)
        if self.risk_aversion:
            reward = torch.where(alive, reward - 0.5 * self.risk_aversion * (growth - 1.0) ** 2, reward)
        book = (1.0 + (w * next_returns).sum(1)).clamp(min=1e-4)[:, None]  # as in `step`
        new_held = w if self.cost_model == "target" or self.lag else w * (1.0 + next_returns) / book
        new_held = torch.where(alive[:, None], new_held, torch.zeros_like(new_held))
        return reward, new_held, alive.to(reward.dtype)
