"""Paired statistics for comparing daily-return strategies over the same days.

Units, throughout:

- A return series is 1-D, finite, one value a period (a trading day by default), in excess of the
  risk-free rate where a Sharpe ratio is meant; ``periods`` is the number of periods a year (252).
- "Sharpe" (``sharpe``, ``sharpe_se``, ``delta_sharpe``, ``information_ratio``, the ``sr0`` of
  ``probabilistic_sharpe``, the ``sr_std`` of ``deflated_sharpe``) is **annualised**:
  ``SR = sqrt(periods) * mean / std`` with ``ddof = 1``.
- ``psr_from_moments`` is the only function in **per-period** units (the formula of Bailey & López
  de Prado works in the units of one observation); ``probabilistic_sharpe`` and
  ``deflated_sharpe`` convert an annual SR to per-period by dividing by ``sqrt(periods)``.
- ``expected_max_sharpe`` returns the units of its ``sr_std`` (it is linear in it).
- Kurtosis is the plain (non-excess) kurtosis: 3 for a normal distribution.

Paired means the series are of the same days: the bootstrap resamples days, the same days for both.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
from scipy import stats as _st

#: the Euler-Mascheroni constant (expected maximum of Sharpe estimates, Bailey & López de Prado 2014)
EULER_GAMMA = 0.5772156649015329

#: the columns of `paired_table`
PAIRED_COLUMNS = ["Sharpe", "Sharpe SE", "ΔSharpe", "ΔSharpe lo", "ΔSharpe hi", "JKM p", "IR", "IR t", "corr",
                  "PSR", "DSR"]


# --------------------------------------------------------------------------------------------- input
def _series(x, name: str = "r", min_n: int = 0) -> np.ndarray:
    """`x` as a 1-D float array of finite values with at least `min_n` of them (else ValueError)."""
    a = np.asarray(x, dtype=float)
    if a.ndim != 1:
        raise ValueError(f"{name} must be a 1-D series of returns, got shape {a.shape}")
    bad = ~np.isfinite(a)
    if bad.any():
        raise ValueError(f"{name} holds {int(bad.sum())} non-finite value(s) (first at position "
                         f"{int(np.flatnonzero(bad)[0])}): returns must be finite")
    if len(a) < min_n:
        raise ValueError(f"{name} has {len(a)} observation(s): at least {min_n} are needed")
    return a


def _pair(a, b, min_n: int, names=("a", "b")) -> tuple[np.ndarray, np.ndarray]:
    """Two paired series of the same length (same days)."""
    x, y = _series(a, names[0]), _series(b, names[1])
    if len(x) != len(y):
        raise ValueError(f"paired series differ in length: {names[0]} has {len(x)}, {names[1]} has {len(y)} "
                         f"observations (they must be the same days)")
    if len(x) < min_n:
        raise ValueError(f"paired series have {len(x)} observation(s): at least {min_n} are needed")
    return x, y


def _periods(periods) -> float:
    p = float(periods)
    if not (math.isfinite(p) and p > 0):
        raise ValueError(f"periods must be a positive number of periods a year, got {periods!r}")
    return p


def _constant(x: np.ndarray) -> bool:
    """No spread beyond rounding (e.g. ``(b + alpha) - b``): ptp <= 1e-11 · max |x|."""
    return len(x) == 0 or float(np.ptp(x)) <= 1e-11 * float(np.max(np.abs(x)))


# ------------------------------------------------------------------------------------------- Sharpe
def sharpe(r, periods: int = 252) -> float:
    """Annualised Sharpe ratio ``sqrt(periods) * mean(r) / std(r, ddof=1)`` of (excess) returns.

    nan for fewer than 2 observations or a constant series (zero standard deviation)."""
    x = _series(r)
    p = _periods(periods)
    if len(x) < 2 or _constant(x):
        return float("nan")
    return float(math.sqrt(p) * x.mean() / x.std(ddof=1))


def _moments(x: np.ndarray) -> tuple[float, float, float]:
    """Per-period Sharpe (ddof=1), sample skewness and plain kurtosis (biased moment estimators,
    ``scipy.stats.skew`` / ``kurtosis(fisher=False)``)."""
    sr = float(x.mean() / x.std(ddof=1))
    return sr, float(_st.skew(x)), float(_st.kurtosis(x, fisher=False))


def sharpe_se(r, periods: int = 252) -> float:
    """Standard error of the annualised Sharpe ratio, Lo (2002) with the non-normal correction of
    Mertens (2002)::

        Var(SR) = (1 + SR²/2 - γ3·SR + (γ4 - 3)/4 · SR²) / n,   SE_annual = sqrt(periods · Var(SR))

    with SR the per-period Sharpe, γ3 the skewness and γ4 the (plain) kurtosis of the returns; for
    normal returns this is ``sqrt((1 + SR²/2) / n)`` (Lo 2002). nan for fewer than 2 observations or
    a constant series.

    References: A. Lo, "The Statistics of Sharpe Ratios", Financial Analysts Journal 58(4), 2002;
    C. Mertens, "Comments on variance of the IID estimator in Lo (2002)", 2002."""
    x = _series(r)
    p = _periods(periods)
    if len(x) < 2 or _constant(x):
        return float("nan")
    sr, g3, g4 = _moments(x)
    var = (1.0 + 0.5 * sr ** 2 - g3 * sr + (g4 - 3.0) / 4.0 * sr ** 2) / len(x)
    return float(math.sqrt(p * max(var, 0.0)))


def psr_from_moments(sr: float, sr0: float, n: int, skew: float, kurt: float) -> float:
    """Probabilistic Sharpe ratio (Bailey & López de Prado 2012), **all Sharpe ratios per period**
    (not annualised)::

        PSR = Φ( (SR - SR0) · sqrt(n - 1) / sqrt(1 - γ3·SR + (γ4 - 1)/4 · SR²) )

    the probability that the true Sharpe exceeds ``sr0`` given the observed ``sr`` over ``n``
    observations with skewness ``skew`` (γ3) and plain kurtosis ``kurt`` (γ4, 3 for normal).

    Reference: D. Bailey, M. López de Prado, "The Sharpe Ratio Efficient Frontier", Journal of
    Risk 15(2), 2012."""
    for name, v in (("sr", sr), ("sr0", sr0), ("skew", skew), ("kurt", kurt)):
        if not math.isfinite(float(v)):
            raise ValueError(f"psr_from_moments: {name} = {v!r} is not finite")
    if int(n) != n or n < 2:
        raise ValueError(f"psr_from_moments: n = {n!r} must be an integer of at least 2 observations")
    if kurt < 1.0 + skew ** 2 - 1e-9:
        raise ValueError(f"psr_from_moments: kurt = {kurt!r} is impossible with skew = {skew!r} "
                         f"(kurtosis >= 1 + skew²; pass the plain kurtosis, 3 for normal, not the excess)")
    den = 1.0 - skew * sr + (kurt - 1.0) / 4.0 * sr ** 2
    if den <= 0:  # only at kurt = 1 + skew² and sr = 2/skew (a two-point distribution)
        raise ValueError(f"psr_from_moments: degenerate moments (1 - skew·sr + (kurt-1)/4·sr² = {den!r})")
    return float(_st.norm.cdf((sr - sr0) * math.sqrt(n - 1) / math.sqrt(den)))


def probabilistic_sharpe(r, sr0: float = 0.0, periods: int = 252) -> float:
    """PSR of the returns ``r`` against the benchmark Sharpe ``sr0`` (**annualised**, as `sharpe`;
    divided by ``sqrt(periods)`` for the per-period formula of `psr_from_moments`, with the sample
    skewness and kurtosis of ``r``). nan for fewer than 2 observations or a constant series."""
    x = _series(r)
    p = _periods(periods)
    if not math.isfinite(float(sr0)):
        raise ValueError(f"probabilistic_sharpe: sr0 = {sr0!r} is not finite")
    if len(x) < 2 or _constant(x):
        return float("nan")
    sr, g3, g4 = _moments(x)
    return psr_from_moments(sr, float(sr0) / math.sqrt(p), len(x), g3, g4)


def expected_max_sharpe(n_trials: int, sr_std: float) -> float:
    """Expected maximum of ``n_trials`` independent Sharpe estimates whose true Sharpe is 0, with
    standard deviation ``sr_std`` across the trials (Bailey & López de Prado 2014, eq. for SR0)::

        E[max SR] ≈ sr_std · ((1 - γ) · Φ⁻¹(1 - 1/N) + γ · Φ⁻¹(1 - 1/(N·e)))

    γ the Euler-Mascheroni constant. In the units of ``sr_std`` (annual in, annual out); 0 for
    N = 1 (no selection).

    Reference: D. Bailey, M. López de Prado, "The Deflated Sharpe Ratio: Correcting for Selection
    Bias, Backtest Overfitting and Non-Normality", Journal of Portfolio Management 40(5), 2014."""
    if isinstance(n_trials, bool) or int(n_trials) != n_trials or n_trials < 1:
        raise ValueError(f"expected_max_sharpe: n_trials = {n_trials!r} must be an integer >= 1")
    s = float(sr_std)
    if not (math.isfinite(s) and s >= 0):
        raise ValueError(f"expected_max_sharpe: sr_std = {sr_std!r} must be a finite standard deviation >= 0")
    n = int(n_trials)
    if n == 1:
        return 0.0
    z = (1.0 - EULER_GAMMA) * _st.norm.ppf(1.0 - 1.0 / n) + EULER_GAMMA * _st.norm.ppf(1.0 - 1.0 / (n * math.e))
    return float(s * z)


def deflated_sharpe(r, n_trials: int, sr_std: float, periods: int = 252) -> float:
    """Deflated Sharpe ratio (Bailey & López de Prado 2014): the PSR of ``r`` against the Sharpe the
    best of ``n_trials`` skill-less trials would show, ``SR0 = expected_max_sharpe(n_trials, sr_std)``.

    ``sr_std`` is the standard deviation of the trials' **annualised** Sharpe ratios (as `sharpe`
    gives them); SR0 is annual and `probabilistic_sharpe` converts it to per-period. DSR <= PSR(0)
    since SR0 >= 0, with equality for one trial."""
    return probabilistic_sharpe(r, sr0=expected_max_sharpe(n_trials, sr_std), periods=periods)


# ---------------------------------------------------------------------------------------- bootstrap
def default_block(n: int) -> int:
    """The default mean block length of the stationary bootstrap: ``round(n ** (1/3))``, at least 1."""
    if int(n) != n or n < 1:
        raise ValueError(f"default_block: n = {n!r} must be a positive integer")
    return max(1, int(round(int(n) ** (1.0 / 3.0))))


def stationary_bootstrap_indices(n: int, block: float, n_boot: int, rng=None) -> np.ndarray:
    """Indices of the stationary bootstrap of Politis & Romano (1994): each resample of ``n`` days
    is a concatenation of runs ``i, i+1, i+2, ...`` (wrapping from ``n-1`` to ``0``) that start at a
    uniform day, with geometric lengths of mean ``block`` (a new run starts at each day with
    probability ``1/block``), cut to ``n``. Returns an int array of shape (n_boot, n).

    ``rng``: a `numpy.random.Generator`, or a seed for `numpy.random.default_rng`.

    Reference: D. Politis, J. Romano, "The Stationary Bootstrap", JASA 89(428), 1994."""
    if int(n) != n or n < 1:
        raise ValueError(f"stationary_bootstrap_indices: n = {n!r} must be a positive integer")
    if int(n_boot) != n_boot or n_boot < 1:
        raise ValueError(f"stationary_bootstrap_indices: n_boot = {n_boot!r} must be a positive integer")
    if not (math.isfinite(float(block)) and block >= 1):
        raise ValueError(f"stationary_bootstrap_indices: block = {block!r} must be a mean block length >= 1")
    n, n_boot = int(n), int(n_boot)
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    new = rng.random((n_boot, n)) < 1.0 / float(block)
    new[:, 0] = True
    starts = rng.integers(0, n, size=(n_boot, n))
    pos = np.arange(n)
    first = np.maximum.accumulate(np.where(new, pos, 0), axis=1)  # where the current run began
    begin = np.take_along_axis(starts, first, axis=1)
    return ((begin + (pos - first)) % n).astype(np.int64)


def _boot_sharpe(x: np.ndarray, idx: np.ndarray, p: float) -> np.ndarray:
    """Annualised Sharpe of each resample ``x[idx[k]]`` (nan for a constant resample)."""
    s = x[idx]
    m = s.mean(axis=1)
    sd = s.std(axis=1, ddof=1)
    out = np.full(len(idx), np.nan)
    ok = np.ptp(s, axis=1) > 0
    out[ok] = math.sqrt(p) * m[ok] / sd[ok]
    return out


def _delta(x: np.ndarray, y: np.ndarray, idx: np.ndarray, level: float, p: float) -> dict:
    d = _boot_sharpe(x, idx, p) - _boot_sharpe(y, idx, p)
    if np.array_equal(x, y):
        d = np.zeros(len(idx))  # a constant resample is nan for both; the difference is still 0
    d = d[np.isfinite(d)]
    sa, sb = sharpe(x, p), sharpe(y, p)
    delta = 0.0 if np.array_equal(x, y) else sa - sb
    if len(d) == 0:
        lo = hi = se = float("nan")
    else:
        lo, hi = (float(v) for v in np.quantile(d, [(1.0 - level) / 2.0, (1.0 + level) / 2.0]))
        se = float(d.std(ddof=1)) if len(d) > 1 else float("nan")
    return {"delta": float(delta), "lo": lo, "hi": hi, "se": se}


def _check_boot(n_boot, level, seed) -> None:
    if isinstance(n_boot, bool) or int(n_boot) != n_boot or n_boot < 1:
        raise ValueError(f"n_boot = {n_boot!r} must be a positive integer number of resamples")
    if not 0 < float(level) < 1:
        raise ValueError(f"level = {level!r} must be a confidence level strictly between 0 and 1 (e.g. 0.95)")
    if seed is not None and (isinstance(seed, bool) or int(seed) != seed or seed < 0):
        raise ValueError(f"seed = {seed!r} must be a non-negative integer")


def delta_sharpe(a, b, n_boot: int = 2000, block=None, seed: int = 0, level: float = 0.95,
                 periods: int = 252) -> dict:
    """Sharpe(a) - Sharpe(b) (annualised) of two series of the same days, with the percentile
    interval (at ``level``) and the standard error of the paired stationary bootstrap: the same
    resampled days (`stationary_bootstrap_indices`, mean block ``block``, default `default_block`)
    for both series, so their correlation is kept. Deterministic for a given ``seed``; a resample in
    which a series is constant (no Sharpe) is dropped.

    Returns a dict with keys delta, lo, hi, se, block, n_boot, seed."""
    x, y = _pair(a, b, 3)
    p = _periods(periods)
    _check_boot(n_boot, level, seed)
    blk = default_block(len(x)) if block is None else block
    idx = stationary_bootstrap_indices(len(x), blk, int(n_boot), np.random.default_rng(seed))
    out = _delta(x, y, idx, float(level), p)
    out.update(block=blk, n_boot=int(n_boot), seed=seed)
    return out


# ------------------------------------------------------------------------------------ paired tests
def jobson_korkie_memmel(a, b) -> tuple[float, float]:
    """Test of equal Sharpe ratios of two paired series: Jobson & Korkie (1981) with the correction
    of Memmel (2003)::

        z = (σb·μa - σa·μb) / sqrt(θ),
        θ = (1/T) · (2σa²σb² - 2σaσbσab + ½μa²σb² + ½μb²σa²
                     - μaμb/(2σaσb) · (σab² + σa²σb²))

    (sample moments, ddof=1), asymptotically N(0, 1) under equal Sharpe ratios. Returns (z,
    two-sided p); z > 0 when a has the higher Sharpe, and z(a, b) = -z(b, a). (nan, nan) when θ is
    not positive (e.g. identical series, or a constant one).

    References: J. D. Jobson, B. Korkie, "Performance Hypothesis Testing with the Sharpe and
    Treynor Measures", Journal of Finance 36(4), 1981; C. Memmel, "Performance Hypothesis Testing
    with the Sharpe Ratio", Finance Letters 1, 2003."""
    x, y = _pair(a, b, 3)
    t = len(x)
    ma, mb = x.mean(), y.mean()
    c = np.cov(x, y, ddof=1)
    va, vb, cab = c[0, 0], c[1, 1], c[0, 1]
    if va <= 0 or vb <= 0:
        return float("nan"), float("nan")
    sa, sb = math.sqrt(va), math.sqrt(vb)
    theta = (2 * va * vb - 2 * sa * sb * cab + 0.5 * ma ** 2 * vb + 0.5 * mb ** 2 * va
             - ma * mb / (2 * sa * sb) * (cab ** 2 + va * vb)) / t
    num = sb * ma - sa * mb
    if not theta > 1e-14 * (va * vb) / t:
        return float("nan"), float("nan")
    z = float(num / math.sqrt(theta))
    return z, float(2.0 * _st.norm.sf(abs(z)))


def information_ratio(a, b, periods: int = 252) -> tuple[float, float, float]:
    """Information ratio of ``a`` over ``b`` (same days): with ``d = a - b``,

        IR = sqrt(periods) · mean(d) / std(d),   t = sqrt(n) · mean(d) / std(d),
        TE = sqrt(periods) · std(d)           (std with ddof=1)

    returns (IR, t, TE); t is the t-statistic of the mean active return (iid). IR and t are nan
    when the tracking error is 0 (d constant, e.g. a = b)."""
    x, y = _pair(a, b, 2)
    p = _periods(periods)
    d = x - y
    if _constant(d):
        return float("nan"), float("nan"), 0.0
    m, sd = d.mean(), d.std(ddof=1)
    return float(math.sqrt(p) * m / sd), float(math.sqrt(len(d)) * m / sd), float(math.sqrt(p) * sd)


def beta(a, b) -> float:
    """OLS beta of ``a`` on ``b`` (with an intercept): ``cov(a, b) / var(b)``. nan when ``b`` is
    constant."""
    x, y = _pair(a, b, 2)
    if _constant(y):
        return float("nan")
    c = np.cov(x, y, ddof=1)
    return float(c[0, 1] / c[1, 1])


def break_even_cost_bps(gross_a, turnover_a, b, periods: int = 252) -> float:
    """The cost per unit of turnover, in basis points, at which strategy a would have the same
    Sharpe as b: the ``c`` with ``sharpe(gross_a - c·1e-4·turnover_a) = sharpe(b)``, found by
    bisection (to 1e-9 bps or 200 halvings) on a bracket grown by doubling from 1 bp.

    ``gross_a``: a's daily returns before costs; ``turnover_a``: its daily turnover (>= 0, the
    fraction of the book traded), same days as ``b``. Returns

    - nan when a does not beat b even before costs (``sharpe(gross_a) < sharpe(b)``); 0 when equal;
    - inf when no cost brings a down to b (a never trades, or b's Sharpe is below the limit
      ``-mean(turnover)/std(turnover)`` that a's net Sharpe tends to as the cost grows).

    The net Sharpe need not be monotone in the cost when turnover varies; bisection returns a
    crossing inside the first bracket ``[c/2, c]`` where a's net Sharpe falls to b's."""
    g = _series(gross_a, "gross_a")
    t = _series(turnover_a, "turnover_a")
    y = _series(b, "b")
    if not len(g) == len(t) == len(y):
        raise ValueError(f"break_even_cost_bps: lengths differ (gross_a {len(g)}, turnover_a {len(t)}, b {len(y)}): "
                         f"they must be the same days")
    if len(g) < 3:
        raise ValueError(f"break_even_cost_bps: {len(g)} observation(s), at least 3 are needed")
    if (t < 0).any():
        raise ValueError(f"break_even_cost_bps: turnover_a has {int((t < 0).sum())} negative value(s) "
                         f"(min {t.min()!r}): turnover is >= 0")
    p = _periods(periods)
    target = sharpe(y, p)
    s0 = sharpe(g, p)
    if not (math.isfinite(target) and math.isfinite(s0)):
        raise ValueError(f"break_even_cost_bps: a Sharpe is undefined (gross_a {s0!r}, b {target!r}; constant series?)")

    def f(c):
        s = sharpe(g - c * 1e-4 * t, p)
        return (s if math.isfinite(s) else -math.inf) - target

    if s0 < target:
        return float("nan")
    if s0 == target:
        return 0.0
    if not t.any():
        return float("inf")
    lo, hi = 0.0, 1.0
    while f(hi) > 0:
        lo, hi = hi, hi * 2.0
        if hi > 1e12:
            return float("inf")
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if f(mid) > 0:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-9:
            break
    return float(0.5 * (lo + hi))


def pbo(matrix, n_splits: int = 16) -> float:
    """Probability of backtest overfitting by combinatorially symmetric cross-validation (Bailey,
    Borwein, López de Prado & Zhu 2017).

    ``matrix``: T×N returns of N configurations over the same T days. The rows are cut into
    ``n_splits`` (even) contiguous blocks (`numpy.array_split`); for each of the C(S, S/2) ways to
    choose half of them as in-sample (the rest out-of-sample) the configuration with the best
    in-sample Sharpe is taken, and its relative rank ω = rank/(N+1) among the N out-of-sample
    Sharpes (rank 1 = worst, ties averaged) gives the logit λ = ln(ω/(1-ω)). PBO is the fraction of
    the splits with λ <= 0 (the in-sample best at or below the out-of-sample median). About 0.5 for
    configurations of pure noise; near 0 when one configuration truly dominates.

    Reference: D. Bailey, J. Borwein, M. López de Prado, Q. J. Zhu, "The Probability of Backtest
    Overfitting", Journal of Computational Finance 20(4), 2017."""
    m = np.asarray(matrix.to_numpy() if isinstance(matrix, pd.DataFrame) else matrix, dtype=float)
    if m.ndim != 2:
        raise ValueError(f"pbo: matrix must be T×N (days × configurations), got shape {m.shape}")
    if not np.isfinite(m).all():
        raise ValueError(f"pbo: matrix holds {int((~np.isfinite(m)).sum())} non-finite value(s)")
    t, n = m.shape
    if isinstance(n_splits, bool) or int(n_splits) != n_splits or n_splits < 2 or n_splits % 2:
        raise ValueError(f"pbo: n_splits = {n_splits!r} must be an even integer >= 2")
    s = int(n_splits)
    if n < 2:
        raise ValueError(f"pbo: {n} configuration(s), at least 2 are needed")
    if t < 2 * s:
        raise ValueError(f"pbo: {t} rows for {s} splits, at least {2 * s} (2 days a block) are needed")
    blocks = np.array_split(np.arange(t), s)
    bsum = np.stack([m[i].sum(axis=0) for i in blocks])           # (S, N)
    bsq = np.stack([(m[i] ** 2).sum(axis=0) for i in blocks])      # (S, N)
    bcnt = np.array([len(i) for i in blocks], dtype=float)         # (S,)
    combos = np.array(list(itertools.combinations(range(s), s // 2)))
    mask = np.zeros((len(combos), s))
    np.put_along_axis(mask, combos, 1.0, axis=1)

    def sr(w):
        k = (w @ bcnt)[:, None]
        mu = (w @ bsum) / k
        var = np.maximum((w @ bsq) - k * mu ** 2, 0.0) / (k - 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = mu / np.sqrt(var)
        return np.where(var > 0, out, np.where(mu > 0, np.inf, np.where(mu < 0, -np.inf, 0.0)))

    is_sr, oos_sr = sr(mask), sr(1.0 - mask)
    best = np.argmax(is_sr, axis=1)
    chosen = oos_sr[np.arange(len(combos)), best][:, None]
    rank = (oos_sr < chosen).sum(axis=1) + 0.5 * ((oos_sr == chosen).sum(axis=1) - 1) + 1
    omega = rank / (n + 1)
    logit = np.log(omega / (1.0 - omega))
    return float(np.mean(logit <= 0))


# ---------------------------------------------------------------------------------------- the table
def paired_table(returns: pd.DataFrame, against: str, n_boot: int = 2000, block=None, seed: int = 0,
                 n_trials: int = 1, sr_std=None, periods: int = 252, level: float = 0.95) -> pd.DataFrame:
    """One row per column of ``returns`` (strategies over the same days) against the column
    ``against`` (the reference), with the columns `PAIRED_COLUMNS`:

    - Sharpe, Sharpe SE: `sharpe`, `sharpe_se` (annualised);
    - ΔSharpe, ΔSharpe lo, ΔSharpe hi: `delta_sharpe` against the reference, every row on the same
      bootstrap resamples (one set of indices for the table);
    - JKM p: `jobson_korkie_memmel` p-value; IR, IR t: `information_ratio` over the reference;
      corr: Pearson correlation with the reference;
    - PSR: `probabilistic_sharpe` against 0; DSR: `deflated_sharpe` with ``n_trials`` and ``sr_std``
      (annual). For ``n_trials = 1`` the expected maximum is 0 and DSR = PSR; for ``n_trials > 1``
      without ``sr_std`` DSR is nan (the trials' dispersion is unknown).

    The reference's own row holds what these give for a series against itself: ΔSharpe, lo and hi
    0, corr 1, JKM p, IR and IR t nan (zero tracking error). Every column must have a value on every
    day (else ValueError naming the column). ``table.attrs`` holds the settings (n_boot, block, seed,
    level, n_trials, sr_std, against, n_days, periods) for `bootstrap_note`."""
    if not isinstance(returns, pd.DataFrame):
        raise ValueError(f"paired_table: returns must be a DataFrame of strategies' returns, "
                         f"got {type(returns).__name__}")
    cols = list(returns.columns)
    if against not in cols:
        raise ValueError(f"paired_table: against = {against!r} is not a column; columns: {', '.join(map(str, cols))}")
    if len(set(cols)) != len(cols):
        dup = sorted({str(c) for c in cols if cols.count(c) > 1})
        raise ValueError(f"paired_table: duplicate column name(s) {', '.join(dup)}")
    for c in cols:
        v = pd.to_numeric(returns[c], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(v)
        if bad.any():
            first = returns.index[np.flatnonzero(bad)[0]]
            raise ValueError(f"paired_table: column {c!r} has no finite return on {int(bad.sum())} of {len(v)} days "
                             f"(first {first}): every strategy must cover the same days")
    n = len(returns)
    if n < 3:
        raise ValueError(f"paired_table: {n} day(s), at least 3 are needed")
    p = _periods(periods)
    _check_boot(n_boot, level, seed)
    if isinstance(n_trials, bool) or int(n_trials) != n_trials or n_trials < 1:
        raise ValueError(f"paired_table: n_trials = {n_trials!r} must be an integer >= 1")
    if sr_std is not None and not (math.isfinite(float(sr_std)) and sr_std >= 0):
        raise ValueError(f"paired_table: sr_std = {sr_std!r} must be a finite standard deviation >= 0 (or None)")
    blk = default_block(n) if block is None else block
    idx = stationary_bootstrap_indices(n, blk, int(n_boot), np.random.default_rng(seed))
    ref = returns[against].to_numpy(dtype=float)
    rows = {}
    for c in cols:
        x = returns[c].to_numpy(dtype=float)
        d = _delta(x, ref, idx, float(level), p)
        _, jp = jobson_korkie_memmel(x, ref)
        ir, irt, _ = information_ratio(x, ref, p)
        corr = float(np.corrcoef(x, ref)[0, 1]) if not (_constant(x) or _constant(ref)) else float("nan")
        if n_trials == 1:
            dsr = deflated_sharpe(x, 1, 0.0 if sr_std is None else sr_std, p)
        elif sr_std is None:
            dsr = float("nan")
        else:
            dsr = deflated_sharpe(x, int(n_trials), float(sr_std), p)
        rows[c] = [sharpe(x, p), sharpe_se(x, p), d["delta"], d["lo"], d["hi"], jp, ir, irt, corr,
                   probabilistic_sharpe(x, 0.0, p), dsr]
    table = pd.DataFrame.from_dict(rows, orient="index", columns=PAIRED_COLUMNS)
    table.attrs.update(n_boot=int(n_boot), block=blk, seed=seed, level=float(level), n_trials=int(n_trials),
                       sr_std=None if sr_std is None else float(sr_std), against=against, n_days=n, periods=p)
    return table


def _frequency(periods: float) -> str:
    return {252: "daily", 52: "weekly", 12: "monthly", 4: "quarterly", 1: "annual"}.get(
        int(periods) if float(periods).is_integer() else -1, f"{periods:g} periods a year")


def trials_sharpe_std(sharpes, n: int, periods: float = 252) -> float:
    """The spread of the trials' annualised Sharpe ratios for the deflated Sharpe: their sample
    standard deviation when there are two or more, else the standard error of one Sharpe
    estimate under the null of no skill, √(periods / n) (what N skill-less trials would scatter
    by, for n observations each)."""
    sr = [x for x in sharpes if math.isfinite(x)]
    if len(sr) > 1:
        return float(np.std(sr, ddof=1))
    if n < 2:
        raise ValueError(f"trials_sharpe_std: {n} observation(s), at least 2 are needed")
    return math.sqrt(float(periods) / n)


def bootstrap_note(attrs: dict) -> str:
    """One sentence (no final full stop) describing the ΔSharpe interval of a `paired_table`, from
    its ``attrs``, e.g. "ΔSharpe: 95% interval of a paired stationary bootstrap (2000 resamples,
    mean block 13 days, seed 0) of 2197 daily returns against equal weight (daily)"."""
    need = ("n_boot", "block", "seed", "level", "against")
    missing = [k for k in need if k not in attrs]
    if missing:
        raise ValueError(f"bootstrap_note: attrs lack {', '.join(missing)} (pass a paired_table's attrs)")
    freq = _frequency(float(attrs.get("periods", 252)))
    unit = "days" if freq == "daily" else "periods"
    n = f" of {attrs['n_days']} {freq} returns" if "n_days" in attrs else f" of {freq} returns"
    return (f"ΔSharpe: {100 * float(attrs['level']):g}% interval of a paired stationary bootstrap "
            f"({attrs['n_boot']} resamples, mean block {float(attrs['block']):g} {unit}, seed {attrs['seed']}){n} "
            f"against {attrs['against']}")
