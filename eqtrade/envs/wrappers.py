"""Observation wrappers composed by the env factory (`eqtrade.envs.factory.make_env`).

A wrapper declares how it acts on the env's symmetry: `ObservationNoise` adds zero-mean,
isotropic Gaussian noise, whose distribution every group element of a `Symmetry` (signs and
permutations of components) leaves unchanged, so the wrapped env keeps the env's symmetry in
distribution; it passes `symmetry` through unchanged.

`VolatilityNormalized` divides the trading envs' returns by their causal trailing volatility.
It commutes with the reflection (R -> -R maps the scaled returns to their negatives exactly, so
the env's C2 symmetry passes through unchanged) and creates a continuous invariance of its own,
which is declared as a documented property with a measured gap, not as an escnn group: the
return-scale invariance R -> c·R (c > 0) holds exactly once the trailing window is full; on
data, how far expected returns do scale with volatility is `eqtrade symmetry`'s scale gap
(`eqtrade.symmetry.gap.scale_gap`). Tests check both on the wrapped envs.

`MarketNoise` is the trading envs' observation noise: noisy observations of the market's daily
returns (Gaussian, in units of each asset's trailing volatility; optionally stale and bad ticks),
never of the book, and never of the returns the env trades on. It passes the symmetry through in
distribution: R -> -R and permutations of the assets map the noise to noise of the same law
(ε symmetric and i.i.d. over assets; a stale tick's catch-up is the sum of the returns missed,
which is odd in R; a bad tick's sign is a fair coin).

`FrameStack` stacks the last k observations on the channel axis (the pixel tasks' 3 frames). The
group acts on every frame alike (`eqtrade.symmetry.image.image_transform` acts on the trailing
image axes), so g·stack(frames) = stack(g·frames): the env's symmetry passes through unchanged.
A wrapper that holds episode state (the frames stacked) saves and restores it with the env's own
(`eqtrade.envs.protocol.episode_state`), so a checkpoint taken mid-episode resumes it.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from .protocol import rng_from_state, rng_state


class ObservationNoise(gym.ObservationWrapper):
    """N(0, σ²) added to every observation entry the agent sees (the env itself is unchanged):
    the noise of the non-trading envs (dm_control, gymnasium tasks, pixels); the trading envs use
    `MarketNoise`, which leaves the book exact.

    uint8 frames: σ is a share of the intensity range (σ·255 per pixel, clipped to 0..255).
    Noise comes from the wrapper's own generator (`seed`), drawn once per observation a policy
    acts on: the last observation of an episode (terminated or truncated) is returned as it is,
    so that episode k's noise does not depend on how long episode k - 1 was observed."""

    def __init__(self, env: gym.Env, sigma: float, seed: int = 0):
        super().__init__(env)
        if not np.isfinite(sigma) or sigma < 0:
            raise ValueError(f"observation noise σ must be a number >= 0, got {sigma}")
        self.sigma = float(sigma)
        self.rng = np.random.default_rng(seed)
        self._pixels = env.observation_space.dtype == np.uint8

    @property
    def symmetry(self):
        from .protocol import symmetry_of

        return symmetry_of(self.env)

    def observation(self, obs):
        if self.sigma <= 0:
            return obs
        if self._pixels:
            return np.clip(obs + 255.0 * self.sigma * self.rng.standard_normal(obs.shape), 0, 255).astype(np.uint8)
        return obs + self.rng.normal(0.0, self.sigma, size=np.shape(obs))

    def step(self, action):
        obs, r, term, trunc, info = self.env.step(action)
        return (obs if term or trunc else self.observation(obs)), r, term, trunc, info


class MarketNoise(gym.ObservationWrapper):
    """Noisy observations of the market for the trading envs (portfolio and single-asset): the
    agent sees noisy daily returns; the weights (position) held are shown exactly, and the env's
    rewards, `info["value"]` and exact-reward extras use the true returns.

    At every reset the wrapper draws, from its own generator (`seed`), one noisy copy R̃ of the
    market's [T, N] return table; every observation of the episode is a window of R̃ (so a day's
    noisy return is the same in every window that contains it), volatility-normalised from R̃
    itself when the env is normalised (the `VolatilityNormalized` found inside: its trailing
    volatility sees the noise too). R̃ is built day by day, for each asset i:
    - `stale` (probability p per day): the price is a copy of the previous day's, so the day's
      observed return is exactly 0 and the next fresh day carries the sum of the returns missed
      (their compound return to first order; the sum keeps R -> -R exact);
    - `bad_ticks` (probability p per fresh day): the return is replaced by ±`bad_size`·vol_i[s]
      (a fair sign);
    - otherwise R̃[s] = R_fresh[s] + σ·vol_i[s]·ε, ε ~ N(0, 1) i.i.d.,
    where vol_i[s] is the causal trailing volatility of the TRUE returns before s
    (`Market.trailing_vol`, the estimator `Market.scaled_returns` divides by, over `vol_window`
    days). Noise at s uses data up to s only (no look-ahead); the draws do not depend on the prices.

    Wrap it outermost (over `VolatilityNormalized`): it replaces the return block of the
    observation and keeps the rest. Symmetry: passed through unchanged, exact in distribution
    (module docstring). Its episode state (the generator before and after the episode's draw)
    goes into checkpoints, so a resumed episode sees the same noisy market."""

    def __init__(self, env: gym.Env, sigma: float, seed: int = 0, stale: float = 0.0, bad_ticks: float = 0.0,
                 bad_size: float = 5.0, vol_window: int | None = None):
        super().__init__(env)
        u = env.unwrapped
        if not callable(getattr(u, "return_window", None)):
            raise TypeError(f"{u} shows no return window: MarketNoise wraps the trading envs")
        for name, v, hi in (("observation noise σ", sigma, np.inf), ("stale", stale, 1.0),
                            ("bad_ticks", bad_ticks, 1.0), ("bad_size", bad_size, np.inf)):
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not 0 <= v <= hi:
                raise ValueError(f"{name} must be a number in [0, {hi}], got {v!r}")
        self.sigma, self.stale, self.bad_ticks, self.bad_size = float(sigma), float(stale), float(bad_ticks), float(bad_size)
        self._norm = _inner(env, VolatilityNormalized)
        if vol_window is None:
            vol_window = self._norm.vol_window if self._norm is not None else 63
        self.vol_window = int(vol_window)
        m = u.market
        self._valid = m.valid_returns()
        self._vol = m.trailing_vol(self.vol_window)  # of the true returns: the noise's scale
        self.rng = np.random.default_rng(seed)
        self._drawn_from = rng_state(self.rng)
        self.noisy_returns = self._draw()  # R̃ of the current episode ([T, N], raw returns)
        self._shown = self._table(self.noisy_returns)

    @property
    def symmetry(self):
        from .protocol import symmetry_of

        return symmetry_of(self.env)

    def _draw(self) -> np.ndarray:
        R = self.env.unwrapped.market.returns
        T, N = R.shape
        out = R.copy()
        fresh = self._valid
        if self.stale > 0:
            stale = self._valid & (self.rng.random((T, N)) < self.stale)
            fresh = self._valid & ~stale
            # a fresh day after a run of stale ones carries every return since the last fresh day
            idx = np.where(fresh | ~self._valid, np.arange(T)[:, None], -1)
            last = np.maximum.accumulate(idx, axis=0)  # the last fresh (or unlisted) day <= s
            prev = np.vstack([np.full((1, N), -1), last[:-1]])  # ... before s
            C = np.cumsum(R, axis=0)
            # (day 0 is never a valid return, so a fresh day always has such a day before it)
            carry = fresh & (prev < np.arange(T)[:, None] - 1)
            cols = np.broadcast_to(np.arange(N), (T, N))
            out[carry] = C[carry] - C[prev[carry], cols[carry]]
            out[stale] = 0.0
        if self.sigma > 0:
            eps = self.rng.standard_normal((T, N))
            out = np.where(fresh, out + self.sigma * self._vol * eps, out)
        if self.bad_ticks > 0:
            bad = fresh & (self.rng.random((T, N)) < self.bad_ticks)
            sign = np.where(self.rng.random((T, N)) < 0.5, -1.0, 1.0)
            out = np.where(bad, sign * self.bad_size * self._vol, out)
        return out

    def _table(self, noisy: np.ndarray) -> np.ndarray:
        """What the observation shows of the noisy returns: scaled as the env's normalisation
        scales (recomputed on the noisy table), or raw."""
        if self._norm is None:
            return noisy
        return self.env.unwrapped.market.scaled_returns(self._norm.vol_window, self._norm.clip, returns=noisy)

    def reset(self, *, seed=None, options=None):
        self._drawn_from = rng_state(self.rng)
        self.noisy_returns = self._draw()
        self._shown = self._table(self.noisy_returns)
        return super().reset(seed=seed, options=options)

    def observation(self, obs):
        shown = self.env.unwrapped.return_window(self._shown)
        out = np.array(obs, dtype=np.float64)
        out[: shown.size] = shown
        return out

    def episode_state(self) -> dict:
        """The generator before the episode's draw (the noisy table is drawn again from it) and now."""
        return {"drawn_from": self._drawn_from, "rng": rng_state(self.rng)}

    def restore_episode(self, d: dict) -> None:
        self.rng = rng_from_state(d["drawn_from"])
        self._drawn_from = d["drawn_from"]
        self.noisy_returns = self._draw()
        self._shown = self._table(self.noisy_returns)
        self.rng = rng_from_state(d["rng"])


def _inner(env: gym.Env, cls: type) -> gym.Wrapper | None:
    """The outermost wrapper of type `cls` inside `env` (itself included), else None."""
    e = env
    while isinstance(e, gym.Wrapper):
        if isinstance(e, cls):
            return e
        e = e.env
    return None


class VolatilityNormalized(gym.ObservationWrapper):
    """The trading envs' returns divided by their causal trailing volatility (the RMS of the
    `vol_window` returns before each, no demeaning) and clipped to ±`clip`
    (`eqtrade.data.market.Market.scaled_returns`): the market features get unit scale next to
    the positions, which are left as they are.

    Invariance it creates (a property, not a group): `return_scale_invariance`."""

    #: the continuous symmetry this wrapper makes exact, and how it is measured on data
    return_scale_invariance = ("R -> c·R for any c > 0 leaves the scaled returns unchanged once the "
                               "trailing window is full; gap on data: eqtrade.symmetry.gap.scale_gap")

    def __init__(self, env: gym.Env, vol_window: int = 63, clip: float = 5.0):
        super().__init__(env)
        u = env.unwrapped
        if not callable(getattr(u, "return_window", None)):
            raise TypeError(f"{u} shows no return window: VolatilityNormalized wraps the trading envs")
        if _inner(env, MarketNoise) is not None:  # it would show the clean returns over the noisy ones
            raise ValueError(f"{env}: wrap MarketNoise outside VolatilityNormalized (it normalises the noisy returns)")
        from .protocol import check_env_options

        check_env_options(vol_window=vol_window, clip=clip)
        self.vol_window, self.clip = int(vol_window), float(clip)
        self._scaled = u.market.scaled_returns(self.vol_window, self.clip)

    def observation(self, obs):
        shown = self.env.unwrapped.return_window(self._scaled)
        out = np.array(obs, dtype=np.float64)
        out[: shown.size] = shown
        return out


class FrameStack(gym.ObservationWrapper):
    """The last `frames` observations concatenated on axis 0, oldest first; `reset` repeats the
    first observation. [C, H, W] frames -> [frames·C, H, W]."""

    def __init__(self, env: gym.Env, frames: int = 3):
        super().__init__(env)
        if isinstance(frames, bool) or not isinstance(frames, (int, np.integer)) or frames < 1:
            raise ValueError(f"frames must be a whole number >= 1, got {frames!r}")
        self.frames = int(frames)
        space = env.observation_space
        low = np.concatenate([space.low] * self.frames, axis=0)
        high = np.concatenate([space.high] * self.frames, axis=0)
        self.observation_space = gym.spaces.Box(low, high, dtype=space.dtype)
        self._stack: list[np.ndarray] = []

    @property
    def symmetry(self):
        from .protocol import symmetry_of

        return symmetry_of(self.env)

    def reset(self, *, seed=None, options=None):
        obs, info = self.env.reset(seed=seed, options=options)
        self._stack = [obs] * self.frames
        return self._obs(), info

    def step(self, action):
        obs, r, term, trunc, info = self.env.step(action)
        self._stack = self._stack[1:] + [obs]
        return self._obs(), r, term, trunc, info

    def observation(self, obs):  # gymnasium's ObservationWrapper API; reset and step stack instead
        return obs

    def _obs(self) -> np.ndarray:
        return np.concatenate(self._stack, axis=0)

    def episode_state(self) -> dict:
        """The frames stacked, as plain data."""
        return {"stack": [np.array(f, copy=True) for f in self._stack]}

    def restore_episode(self, d: dict) -> None:
        self._stack = [np.asarray(f) for f in d["stack"]]
