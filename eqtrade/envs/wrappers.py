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

from ..data.market import trailing_rms
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
        self._features = _inner(env, MarketFeatures)
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
        scales (recomputed on the noisy table), or raw; with `MarketFeatures` inside, its
        features of the noisy table are recomputed too (`_noisy_features`)."""
        self._noisy_features = self._features.features(noisy) if self._features is not None else None
        shown = self._features if self._features is not None else self._norm
        return noisy if shown is None else shown.shown_returns(noisy)

    def reset(self, *, seed=None, options=None):
        self._drawn_from = rng_state(self.rng)
        self.noisy_returns = self._draw()
        self._shown = self._table(self.noisy_returns)
        return super().reset(seed=seed, options=options)

    def observation(self, obs):
        shown = self.env.unwrapped.return_window(self._shown)
        out = np.array(obs, dtype=np.float64)
        out[: shown.size] = shown
        if self._noisy_features is not None and self._noisy_features.shape[1]:
            f = self._noisy_features[self.env.unwrapped.obs_day()].reshape(-1)
            out[shown.size : shown.size + f.size] = f
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


def fitted_vol_ref(env: gym.Env) -> list[float] | None:
    """The volatility constants of the env's `MarketFeatures` (fitted on its split unless given),
    None where it shows no volatility levels: what `eqtrade train` records as [env] vol_ref."""
    feats = _inner(env, MarketFeatures)
    return None if feats is None or feats.vol_ref is None else list(feats.vol_ref)


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

    @property
    def scale_axis(self):
        """Returns over their own trailing volatility: invariant under R -> c·R (the exact family)."""
        from ..symmetry import ScaleAxis

        return ScaleAxis("exact")

    def shown_returns(self, table: np.ndarray) -> np.ndarray:
        """What the observation's return block shows of a [T, N] return table (noisy ones too)."""
        return self.env.unwrapped.market.scaled_returns(self.vol_window, self.clip, returns=table)

    def observation(self, obs):
        shown = self.env.unwrapped.return_window(self._scaled)
        out = np.array(obs, dtype=np.float64)
        out[: shown.size] = shown
        return out


#: the volatility levels `MarketFeatures` shows, per asset, in order: (whose, trailing days);
#: "own" is the asset's own volatility, "market" the equal-weighted market's (the same row for every asset)
LEVELS = (("own", 21), ("own", 63), ("market", 21), ("market", 63))
#: multi-horizon returns of `horizons = "default"`: (days, skipped most recent days); the 252-day
#: horizon skips the last month, as momentum research does (12-1 momentum)
DEFAULT_HORIZONS = ((5, 0), (21, 0), (63, 0), (126, 0), (252, 21))
#: levels are clipped to ±LEVEL_CLIP (log units around the training split's mean: e^5 ≈ 150x)
LEVEL_CLIP = 5.0
#: the floor of a volatility before its log (a run of zero returns)
VOL_FLOOR = 1e-8


def parse_horizons(value) -> tuple[tuple[int, int], ...]:
    """[5, 21, [252, 21]] / "default" / "5,21,252-21" -> ((5, 0), (21, 0), (252, 21)): each
    horizon is h days, or [h, s]: the h days ending s days before the observation's last return
    (s < h); "none" (or nothing) -> (). A ValueError naming the bad entry otherwise."""
    if value is None or value == [] or value == () or value == "" or value == "none":
        return ()
    if value == "default":
        return DEFAULT_HORIZONS
    items = [v.strip() for v in value.split(",")] if isinstance(value, str) else list(value)
    out = []
    for v in items:
        if isinstance(v, str) and "-" in v:
            v = v.split("-", 1)
        try:
            h, k = (v, 0) if not isinstance(v, (list, tuple)) else tuple(v)
            if isinstance(h, bool) or isinstance(k, bool):
                raise TypeError
            h, k = int(h), int(k)
        except (TypeError, ValueError):
            raise ValueError(f"horizons: {v!r} is not a number of days or [days, skip]") from None
        if not (h >= 1 and 0 <= k < h):
            raise ValueError(f"horizons: [{h}, {k}] needs days >= 1 and 0 <= skip < days")
        out.append((h, k))
    if len(set(out)) != len(out):
        raise ValueError(f"horizons: {value!r} names a horizon twice")
    return tuple(out)


class MarketFeatures(gym.ObservationWrapper):
    """The portfolio env's observation with the features of the scale axis and of longer horizons,
    inserted between the return window and the weights: [W·N returns, H·N horizon returns, V·N
    volatility levels, N weights], each block time- or feature-major with the asset index last (the
    `AssetAxis` blocks "returns", "horizons", "levels", "weights"). Every feature of day t uses
    returns up to and including the observation's last day (`obs_day`): causal.

    scale (the return-scale family, `eqtrade.symmetry.ScaleAxis`):
    - "exact": returns over their trailing volatility only (as `VolatilityNormalized`, which must
      be inside); no levels; every component is invariant under R -> c·R.
    - "relaxed": the same invariant returns plus the V = 4 volatility levels of `LEVELS`: log of
      each asset's trailing 21- and 63-day volatility and the equal-weighted market's, each minus a
      constant `vol_ref` fitted on the training split (the mean of that log over its decision days
      and assets), clipped to ±LEVEL_CLIP: under R -> c·R they move by log c. Networks read them
      through weights that start at zero (they start exactly invariant; eqtrade.nn.factory).
    - "plain": raw returns over a constant (e^vol_ref[own 63-day]: returns in units of a typical
      day of the training split; multiplied by c under R -> c·R) plus the same levels, read freely.
    `vol_ref`: the 4 constants; None fits them on this env's own split (the training env's:
    `eqtrade train` records them in the run config, so that evaluation and test envs use the
    training split's).

    horizons (`parse_horizons`): per asset, the sum of its daily returns over each horizon (h days,
    or [h, s]: skipping the s most recent), over σ·√(h − s) with σ its trailing `vol_window`-day
    volatility ("exact"/"relaxed": invariant under R -> c·R; clipped to ±clip) or over the
    constant ("plain": x c; not clipped, as the raw returns are not). A sum of returns negates under R -> -R, so the reflection acts on them as on
    returns; the levels are the same for R and -R (trivial). Permuting assets permutes every block.

    `features(table)`: the [T, H + V, N] features of another return table aligned with the market
    (`MarketNoise` shows those of its noisy market)."""

    def __init__(self, env: gym.Env, scale: str = "exact", horizons=(), vol_ref=None, vol_window: int = 63,
                 clip: float = 5.0):
        super().__init__(env)
        from ..symmetry import SCALE_FAMILIES

        u = env.unwrapped
        if not callable(getattr(u, "obs_day", None)) or not hasattr(u, "n_assets"):
            raise ValueError(f"scale and horizons apply to the portfolio env, not {type(u).__name__}")
        if scale not in SCALE_FAMILIES:
            raise ValueError(f"scale = {scale!r} is not one of {', '.join(repr(f) for f in SCALE_FAMILIES)} "
                             "(the return-scale family: exact = invariant inputs only, relaxed = plus volatility "
                             "levels read through weights that start at zero, plain = raw returns and levels)")
        if _inner(env, MarketNoise) is not None:
            raise ValueError(f"{env}: wrap MarketNoise outside MarketFeatures (it recomputes the features of the noisy returns)")
        self._norm = _inner(env, VolatilityNormalized)
        if (scale == "plain") == (self._norm is not None):
            raise ValueError(f"scale = {scale!r} " + ("shows raw returns: build it without VolatilityNormalized"
                                                     if scale == "plain" else "needs VolatilityNormalized inside (normalize = true)"))
        self.scale, self.horizons = scale, parse_horizons(horizons)
        self.vol_window, self.clip = int(vol_window), float(clip)
        self.levels = LEVELS if scale != "exact" else ()
        m, n = u.market, u.n_assets
        self._valid = m.valid_returns()
        if self.levels:
            self.vol_ref = self._check_ref(vol_ref) if vol_ref is not None else self._fit_ref(m.returns)
        else:
            if vol_ref is not None:
                raise ValueError("vol_ref applies to scale 'relaxed' or 'plain' (their volatility levels), not 'exact'")
            self.vol_ref = None
        W, H, V = u.window, len(self.horizons), len(self.levels)
        self.n_assets, self.window = n, W
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, ((W + H + V + 1) * n,), dtype=np.float64)
        self._raw_unit = float(np.exp(self.vol_ref[1])) if scale == "plain" else None
        self._table = self.features(m.returns)

    def _check_ref(self, ref) -> list[float]:
        vals = list(ref) if isinstance(ref, (list, tuple, np.ndarray)) else None
        if vals is None or len(vals) != len(LEVELS) or not all(
                isinstance(v, (int, float, np.floating)) and not isinstance(v, bool) and np.isfinite(v) for v in vals):
            raise ValueError(f"vol_ref = {ref!r}: expected {len(LEVELS)} finite numbers (log volatilities of "
                             f"{', '.join(f'{w} {d}-day' for w, d in LEVELS)}), as `eqtrade train` records them")
        return [float(v) for v in vals]

    def _vols(self, R: np.ndarray) -> list[np.ndarray]:
        """[T, N] volatilities of LEVELS (the market's broadcast to every asset), up to and including each day."""
        valid = self._valid
        cnt = valid.sum(1, keepdims=True)
        mkt = np.where(cnt > 0, np.where(valid, R, 0.0).sum(1, keepdims=True) / np.maximum(cnt, 1), 0.0)
        mvalid = cnt > 0
        out = []
        for whose, w in LEVELS:
            if whose == "own":
                out.append(trailing_rms(R, valid, w)[1:])
            else:
                out.append(np.broadcast_to(trailing_rms(mkt, mvalid, w)[1:], R.shape))
        return out

    def _fit_ref(self, R: np.ndarray) -> list[float]:
        u = self.env.unwrapped
        m = u.market
        days = np.arange(m.first, m.last + 1) - u.lag
        ref = []
        for v in self._vols(R):
            x = v[days]
            x = x[x > VOL_FLOOR]
            if x.size == 0:
                raise ValueError("cannot fit vol_ref: no day of the split has a nonzero trailing volatility")
            ref.append(float(np.log(x).mean()))
        return ref

    def features(self, R: np.ndarray) -> np.ndarray:
        """[T, H + V, N] float64: the horizon returns and volatility levels of day s (from the returns
        R[..s] of a table aligned with the market's) in row s."""
        T, N = R.shape
        rows = []
        if self.horizons:
            C = np.concatenate([np.zeros((1, N)), np.cumsum(np.where(self._valid, R, 0.0), axis=0)])  # C[s+1] = Σ_{j<=s}
            s = np.arange(T)
            unit = (trailing_rms(R, self._valid, self.vol_window)[1:] if self.scale != "plain"
                    else np.full((T, N), self._raw_unit))
            for h, k in self.horizons:
                hi, lo = np.maximum(s - k + 1, 0), np.maximum(s - h + 1, 0)
                total = C[hi] - C[lo]
                den = unit * np.sqrt(h - k)
                z = np.divide(total, den, out=np.zeros_like(total), where=den > VOL_FLOOR)
                # over the trailing volatility they are clipped like the daily returns; over the
                # constant (plain) neither is clipped: they scale with c as raw returns do
                rows.append(np.clip(z, -self.clip, self.clip) if self.scale != "plain" else z)
        if self.levels:
            for v, ref in zip(self._vols(R), self.vol_ref):
                lv = np.log(np.maximum(v, VOL_FLOOR)) - ref
                rows.append(np.where(v > VOL_FLOOR, np.clip(lv, -LEVEL_CLIP, LEVEL_CLIP), 0.0))
        return np.stack(rows, axis=1) if rows else np.zeros((T, 0, N))

    def shown_returns(self, table: np.ndarray) -> np.ndarray:
        """What the return block shows of a [T, N] return table: over the trailing volatility
        (exact, relaxed) or over the constant (plain)."""
        return self._norm.shown_returns(table) if self._norm is not None else table / self._raw_unit

    def insert(self, obs, table: np.ndarray) -> np.ndarray:
        """The inner observation [W·N returns, N weights] with the day's rows of a feature table inserted."""
        u = self.env.unwrapped
        WN = self.window * self.n_assets
        obs = np.asarray(obs, dtype=np.float64)
        ret = obs[:WN] if self._norm is not None else obs[:WN] / self._raw_unit
        return np.concatenate([ret, table[u.obs_day()].reshape(-1), obs[WN:]])

    def observation(self, obs):
        return self.insert(obs, self._table)

    # -- what the agent is told ------------------------------------------------------------------
    @property
    def symmetry(self):
        from ..symmetry import portfolio_reflection
        from .protocol import symmetry_of

        if symmetry_of(self.env) is None:  # long-only: no reflection
            return None
        return portfolio_reflection(self.n_assets, self.window, horizons=len(self.horizons), levels=len(self.levels))

    @property
    def asset_axis(self):
        from ..symmetry import AssetAxis

        H, V = len(self.horizons), len(self.levels)
        rows = [(self.window, "returns")] + ([(H, "horizons")] if H else []) + ([(V, "levels")] if V else []) + [(1, "weights")]
        return AssetAxis(self.n_assets, tuple(r for r, _ in rows), names=tuple(self.env.unwrapped.tickers),
                         blocks=tuple(k for _, k in rows))

    @property
    def scale_axis(self):
        from ..symmetry import ScaleAxis

        n, W, H, V = self.n_assets, self.window, len(self.horizons), len(self.levels)
        if self.scale == "exact":
            return ScaleAxis("exact")
        start = (W + H) * n
        shift = tuple(range(start, start + V * n))
        feature = tuple(i // n for i in range(V * n))
        multiply = tuple(range((W + H) * n)) if self.scale == "plain" else ()
        return ScaleAxis(self.scale, shift, feature, V, multiply)


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

    @property
    def sliding_window(self) -> tuple[int, int] | None:
        """(frames, channels per frame): each step drops the oldest frame and appends the new one
        (`eqtrade.envs.protocol.sliding_window_of`); None for a single frame."""
        return (self.frames, int(self.env.observation_space.shape[0])) if self.frames > 1 else None

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
