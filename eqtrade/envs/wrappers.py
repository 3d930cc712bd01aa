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

`FrameStack` stacks the last k observations on the channel axis (the pixel tasks' 3 frames). The
group acts on every frame alike (`eqtrade.symmetry.image.image_transform` acts on the trailing
image axes), so g·stack(frames) = stack(g·frames): the env's symmetry passes through unchanged.
A wrapper that holds episode state (the frames stacked) saves and restores it with the env's own
(`eqtrade.envs.protocol.episode_state`), so a checkpoint taken mid-episode resumes it.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np


class ObservationNoise(gym.ObservationWrapper):
    """N(0, σ²) added to every observation entry the agent sees (the env itself is unchanged).

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
