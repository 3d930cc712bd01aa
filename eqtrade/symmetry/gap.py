"""How far real returns are from the reflection symmetry R -> -R: the ε of the paper's
approximately invariant MDP, for a trading task.

Per asset (and pooled over assets): annualised drift, skewness, the downside/upside
semideviation ratio, and a distance between the distribution of W-day return windows X and of
their reflections -X: the sliced 1-Wasserstein distance (the mean over fixed random directions
θ, one of them the window's total return, of W1(θ·X, −θ·X)), relative to the mean |θ·X|.

A finite sample of an exactly symmetric law still shows a positive distance. The same statistic
on the windows with random signs (symmetric by construction, same size and dependence) gives
that noise level: `floor` is its 95th percentile and `epsilon` = max(0, gap − its median), the
excess asymmetry. The interval is a moving-block bootstrap over windows (basic interval, less the
noise median, clipped at 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view


def _directions(window: int, n: int, seed: int) -> np.ndarray:
    th = np.random.default_rng(seed).normal(size=(window, n))
    th[:, 0] = 1.0  # the window's total return
    return th / np.linalg.norm(th, axis=0)


def _gap_of_projections(u: np.ndarray) -> float:
    """Relative sliced W1(u, -u) for projections u [n, P]."""
    s = np.sort(np.ascontiguousarray(u.T), axis=1)  # rows contiguous: much faster than sorting columns
    w1 = np.abs(s + s[:, ::-1]).mean(axis=1)  # for equal-size samples sorted(-u) = -sorted(u)[::-1]
    return float(np.mean(w1 / np.maximum(np.abs(s).mean(axis=1), 1e-300)))


def _projections(returns: np.ndarray, theta: np.ndarray) -> np.ndarray:
    r = returns[:, None] if returns.ndim == 1 else returns
    W = theta.shape[0]
    return np.concatenate([sliding_window_view(r[:, j], W) @ theta for j in range(r.shape[1])])


def sliced_gap(returns: np.ndarray, theta: np.ndarray) -> float:
    """Relative sliced W1 between the W-day windows of `returns` (1-D, or [T, assets] pooled) and
    their reflections."""
    return _gap_of_projections(_projections(returns, theta))


@dataclass
class GapRow:
    asset: str
    days: int
    drift: float  # annualised mean simple return
    skew: float
    down_up_vol: float  # downside / upside semideviation (1 for a symmetric law)
    gap: float  # relative sliced W1 between windows and reflected windows
    epsilon: float  # gap less the median gap of a symmetric sample of the same size
    eps_lo: float
    eps_hi: float
    floor: float  # 95th percentile of the gap under exact symmetry

    @property
    def reading(self) -> str:
        if self.gap <= self.floor:
            verdict = "indistinguishable from exact reflection symmetry at this sample size"
        elif self.eps_lo > 0:
            verdict = "approximately symmetric, with a detectable asymmetry"
        else:
            verdict = "weak evidence of asymmetry"
        return (f"{self.asset}: ε = {self.epsilon:.3f} [{self.eps_lo:.3f}, {self.eps_hi:.3f}] (gap {self.gap:.3f}, "
                f"symmetric noise <= {self.floor:.3f}) — {verdict}; drift {self.drift:+.1%}/yr, skew "
                f"{self.skew:+.2f}, down/up vol {self.down_up_vol:.2f}")


def _block_times(n: int, block: int, rng) -> np.ndarray:
    """Moving-block bootstrap of window indices 0..n-1."""
    starts = rng.integers(0, max(n - block, 0) + 1, size=int(np.ceil(n / block)))
    return (starts[:, None] + np.arange(block)).reshape(-1)[:n]


def _block_signs(n: int, block: int, rng) -> np.ndarray:
    """Random signs constant over blocks of `block` consecutive windows (keeps their overlap)."""
    return np.repeat(rng.choice([-1.0, 1.0], size=int(np.ceil(n / block))), block)[:n]


def reflection_gap(prices: pd.DataFrame, window: int = 32, n_boot: int = 50, n_proj: int = 16,
                   seed: int = 0, level: float = 0.90, progress: bool = False) -> list[GapRow]:
    """Reflection-symmetry gap of each column of a price panel and of the pooled panel."""
    from ..util import progress_bar

    if len(prices) < window + 2:
        raise ValueError(f"{len(prices)} days of prices are too few for windows of {window} days")
    R = prices.pct_change().iloc[1:].to_numpy(dtype=float)
    theta = _directions(window, n_proj, seed)
    lo_q, hi_q = (1 - level) / 2, 1 - (1 - level) / 2

    def row(name: str, r: np.ndarray, rng) -> GapRow:
        flat = r.reshape(-1)
        sd_dn, sd_up = np.sqrt(np.mean(np.minimum(flat, 0) ** 2)), np.sqrt(np.mean(np.maximum(flat, 0) ** 2))
        m, s = flat.mean(), flat.std()
        skew = float(np.mean((flat - m) ** 3) / s**3) if s > 0 else 0.0
        u = _projections(r, theta)  # [assets · n, P], asset-major
        k = 1 if r.ndim == 1 else r.shape[1]
        n = len(u) // k
        g = _gap_of_projections(u)
        # resample and sign-flip the same days for every asset (keeps cross-asset dependence)
        rows = lambda t: (np.arange(k)[:, None] * n + t[None, :]).reshape(-1)  # noqa: E731
        boot = np.array([_gap_of_projections(u[rows(_block_times(n, window, rng))]) for _ in range(n_boot)])
        null = np.array([_gap_of_projections(u * np.tile(_block_signs(n, window, rng), k)[:, None])
                         for _ in range(n_boot)])
        med = float(np.median(null))
        lo, hi = 2 * g - np.quantile(boot, hi_q), 2 * g - np.quantile(boot, lo_q)  # basic bootstrap
        return GapRow(name, len(r), float(252 * m), skew, float(sd_dn / sd_up) if sd_up > 0 else float("inf"),
                      g, max(0.0, g - med), max(0.0, float(lo) - med), max(0.0, float(hi) - med),
                      float(np.quantile(null, 0.95)))

    rng = np.random.default_rng(seed + 1)
    jobs = [(str(c), R[:, j]) for j, c in enumerate(prices.columns)] + ([("pooled", R)] if R.shape[1] > 1 else [])
    return [row(name, r, rng) for name, r in progress_bar(jobs, desc="symmetry gap", unit="asset", progress=progress)]


# -- return scale --------------------------------------------------------------------------------
@dataclass
class ScaleGapRow:
    asset: str
    windows: int
    vol_ratio: float  # median trailing volatility of the volatile half / of the calm half
    gap: float  # relative sliced W1 between normalised windows of calm and volatile periods
    epsilon: float  # gap less the median gap of random halves
    floor: float  # 95th percentile of the gap of random halves (no regime dependence)

    @property
    def reading(self) -> str:
        verdict = ("indistinguishable from exact return-scale symmetry at this sample size" if self.gap <= self.floor
                   else "approximately scale-symmetric, with a detectable regime dependence")
        return (f"{self.asset}: ε_scale = {self.epsilon:.3f} (gap {self.gap:.3f}, noise <= {self.floor:.3f}; "
                f"volatile/calm volatility x{self.vol_ratio:.1f}) — {verdict}")


def _w1_between(a: np.ndarray, b: np.ndarray) -> float:
    """Relative sliced W1 between projection samples a [n, P] and b [m, P] (quantile grid)."""
    q = np.linspace(0.005, 0.995, 199)
    qa, qb = np.quantile(a, q, axis=0), np.quantile(b, q, axis=0)
    scale = np.maximum(np.abs(np.concatenate([a, b])).mean(axis=0), 1e-300)
    return float(np.mean(np.abs(qa - qb).mean(axis=0) / scale))


def scale_gap(prices: pd.DataFrame, window: int = 32, vol_window: int = 63, n_boot: int = 50, n_proj: int = 16,
              seed: int = 0, clip: float = 5.0) -> list[ScaleGapRow]:
    """Return-scale gap of the environments' normalised observations, per asset and pooled.

    Multiplying all returns by a constant leaves the normalised windows (returns / causal trailing
    volatility) unchanged; the market is symmetric under it in distribution when normalised windows
    look the same in calm and in volatile periods. The statistic is the sliced W1 distance between
    the normalised windows of the calmer and the more volatile half of the days (split at the
    median trailing volatility), relative to their scale; random halves in blocks of `window`
    windows (no regime dependence by construction) give its noise level."""
    from ..data.market import Market

    m = Market.from_prices(prices, 1, (prices.index[0], prices.index[-1]))
    X = m.scaled_returns(vol_window, clip)[vol_window + 1 :]
    R = m.returns
    sq = np.sqrt(pd.DataFrame(R**2).rolling(vol_window).mean().to_numpy())[vol_window:-1]  # σ before each X
    theta = _directions(window, n_proj, seed)
    rng = np.random.default_rng(seed + 2)
    rows = []
    jobs = [(str(c), [j]) for j, c in enumerate(prices.columns)] + ([("pooled", list(range(R.shape[1])))]
                                                                    if R.shape[1] > 1 else [])
    for name, cols in jobs:
        us, vols = [], []
        for j in cols:
            u = sliding_window_view(X[:, j], window) @ theta  # [n, P]
            v = sq[window - 1 :, j][: len(u)]
            us.append(u / 1.0)
            vols.append(v / np.median(v))  # per asset: calm and volatile relative to its own level
        u, v = np.concatenate(us), np.concatenate(vols)
        calm = v <= np.median(v)
        g = _w1_between(u[calm], u[~calm])
        n = len(u)
        null = []
        for _ in range(n_boot):
            halves = np.repeat(rng.random(int(np.ceil(n / window))) < 0.5, window)[:n]
            null.append(_w1_between(u[halves], u[~halves]))
        null = np.array(null)
        ratio = float(np.median(v[~calm]) / max(np.median(v[calm]), 1e-300))
        rows.append(ScaleGapRow(name, n, ratio, g, max(0.0, g - float(np.median(null))), float(np.quantile(null, 0.95))))
    return rows


@dataclass
class ExchangeRow:
    asset: str
    windows: int
    sharpe: float  # annualised mean / volatility of the asset's daily returns (what normalising keeps)
    vol: float  # annualised volatility (what normalising removes)
    gap: float  # relative sliced W1 between this asset's normalised windows and the other assets'
    epsilon: float  # gap less the median gap of random block samples of the pooled assets
    floor: float  # 95th percentile of that null (exchangeable by construction)

    @property
    def reading(self) -> str:
        verdict = ("indistinguishable from the other assets at this sample size" if self.gap <= self.floor
                   else "distinguishable from the other assets")
        return (f"{self.asset}: ε_perm = {self.epsilon:.3f} (gap {self.gap:.3f}, noise <= {self.floor:.3f}) — "
                f"{verdict}; Sharpe {self.sharpe:+.2f}, vol {self.vol:.0%}/yr")


def exchangeability_gap(prices: pd.DataFrame, window: int = 32, vol_window: int = 63, n_boot: int = 50,
                        n_proj: int = 16, seed: int = 0, clip: float = 5.0) -> list[ExchangeRow]:
    """How exchangeable the assets are, as the per-asset networks see them: per asset, the sliced
    W1 distance between its normalised return windows (returns / causal trailing volatility, the
    environments' observations) and the pooled windows of all the other assets, relative to their
    scale. The same statistic between a random sample of the pooled windows (blocks of `window`
    windows, the asset's sample size) and the rest gives its noise level under exact
    exchangeability. Permuting assets is a symmetry of the portfolio task to the extent that these
    distances are small; "pooled" is the mean over assets. Rows need at least two assets."""
    from ..data.market import Market

    if prices.shape[1] < 2:
        raise ValueError(f"exchangeability needs at least 2 assets, got {prices.shape[1]}")
    m = Market.from_prices(prices, 1, (prices.index[0], prices.index[-1]))
    X = m.scaled_returns(vol_window, clip)[vol_window + 1 :]
    R = m.returns[vol_window + 1 :]
    theta = _directions(window, n_proj, seed)
    us = [sliding_window_view(X[:, j], window) @ theta for j in range(X.shape[1])]
    owner = np.concatenate([np.full(len(u), j) for j, u in enumerate(us)])
    allu = np.concatenate(us)
    rng = np.random.default_rng(seed + 3)
    n = int(np.median([len(u) for u in us]))
    blocks = int(np.ceil(len(allu) / window))
    null = []
    for _ in range(n_boot):
        pick = np.zeros(blocks, bool)
        pick[rng.choice(blocks, size=max(1, n // window), replace=False)] = True
        inside = np.repeat(pick, window)[: len(allu)]
        null.append(_w1_between(allu[inside], allu[~inside]))
    med, floor = float(np.median(null)), float(np.quantile(null, 0.95))
    rows = []
    for j, c in enumerate(prices.columns):
        g = _w1_between(us[j], allu[owner != j])
        r = R[:, j]
        vol = float(r.std() * np.sqrt(252))
        rows.append(ExchangeRow(str(c), len(us[j]), float(r.mean() * 252 / max(vol, 1e-300)), vol, g,
                                max(0.0, g - med), floor))
    gaps = np.array([r.gap for r in rows])
    rows.append(ExchangeRow("pooled", len(allu), float(np.mean([r.sharpe for r in rows])),
                            float(np.mean([r.vol for r in rows])), float(gaps.mean()), max(0.0, float(gaps.mean()) - med),
                            floor))
    return rows
