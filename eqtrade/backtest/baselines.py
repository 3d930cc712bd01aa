"""Strong simple baselines as target weights on the decision days, with no look-ahead: the weights
decided at the close of day t use prices up to and including t only.

    ew        1/N of the assets priced on the day
    ivol      w_i ∝ 1/σ_i, σ_i the trailing volatility of asset i's daily returns
    minvar    skfolio MeanRisk, minimum variance, long-only, fully invested
    meanrisk  skfolio MeanRisk, maximum Sharpe ratio (mean/std, risk-free 0), long-only
    hrp       skfolio HierarchicalRiskParity (variance, single linkage)
    erc       skfolio RiskBudgeting, equal risk contributions to the variance
    mom       12-1 momentum: the top third of the assets by their return from t−252 to t−21, 1/k each
    volman    volatility-managed EW: s·(1/N), s = min(1, 15% / σ_EW), σ_EW the EW portfolio's
              realised volatility over the last 21 days (annualised); the rest in cash; daily

Estimates use the last `lookback` daily returns (252 by default) ending at t. The estimated rules
refit on rebalance days only (the first decision day of each month by default, and the first
decision day of the backtest); between two rebalances the target stays constant (the engine
trades back to it from the drifted weights, as for daily equal weight). An asset without a price
on a day gets weight 0 and the others' weights are scaled to keep the book's invested share;
an asset needs `MIN_HISTORY` returns in the window to be in an estimate. Without enough history
for any asset (the data's first weeks), a rule falls back to equal weight.

skfolio is imported inside the functions: `import eqtrade` does not pay for it.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

#: the baselines of this module, short names (the engine names them "equal-weight", "ivol", ...)
BASELINE_KINDS = ("ew", "ivol", "minvar", "meanrisk", "hrp", "erc", "mom", "volman")
#: the ones fitted by a skfolio estimator
SKFOLIO_KINDS = ("minvar", "meanrisk", "hrp", "erc")
#: other names accepted by `named_baselines`
ALIASES = {"equal-weight": "ew", "equal_weight": "ew"}
#: returns an asset needs in the lookback window to enter an estimate
MIN_HISTORY = 60
#: momentum: months skipped at the end of the formation window (the 1 of 12-1), in trading days
MOM_SKIP = 21
#: volatility-managed EW: days of the realised-volatility estimate, and the annual volatility it targets
VOLMAN_WINDOW = 21
VOLMAN_TARGET = 0.15
TRADING_DAYS = 252


def named_baselines(text: str) -> tuple[str, ...]:
    """Baseline kinds from a comma list ("ivol,minvar", "all"), in order, without repeats."""
    out: list[str] = []
    for raw in str(text).split(","):
        name = raw.strip().lower()
        if not name:
            continue
        found = BASELINE_KINDS if name == "all" else (ALIASES.get(name, name),)
        for k in found:
            if k not in BASELINE_KINDS:
                raise ValueError(f"unknown baseline {raw.strip()!r}; choose from {', '.join(BASELINE_KINDS)} or all "
                                 "(a comma list)")
            if k not in out:
                out.append(k)
    if not out:
        raise ValueError(f"no baseline named in {text!r}; choose from {', '.join(BASELINE_KINDS)} or all")
    return tuple(out)


def rebalance_mask(days: pd.DatetimeIndex, rebalance="M") -> np.ndarray:
    """True on the rebalance days among the decision days: the first one, then the first of each
    new period ("D" daily, "W" week, "M" month, "Q" quarter) or every `rebalance`-th day (an int)."""
    n = len(days)
    if isinstance(rebalance, (int, np.integer)) and not isinstance(rebalance, bool):
        if rebalance < 1:
            raise ValueError(f"rebalance = {rebalance} days must be at least 1")
        return np.arange(n) % int(rebalance) == 0
    freq = {"D": None, "W": "W", "M": "M", "Q": "Q"}
    if rebalance not in freq:
        raise ValueError(f"rebalance = {rebalance!r}: use 'D', 'W', 'M', 'Q' or a whole number of days")
    if rebalance == "D" or n == 0:
        return np.ones(n, dtype=bool)
    period = pd.DatetimeIndex(days).to_period(freq[rebalance]).asi8
    return np.r_[True, period[1:] != period[:-1]]


def skfolio_estimator(kind: str):
    """A fresh skfolio estimator of an optimised baseline (long-only, fully invested)."""
    from skfolio import RiskMeasure
    from skfolio.optimization import HierarchicalRiskParity, MeanRisk, ObjectiveFunction, RiskBudgeting

    if kind == "minvar":
        return MeanRisk(objective_function=ObjectiveFunction.MINIMIZE_RISK, risk_measure=RiskMeasure.VARIANCE)
    if kind == "meanrisk":
        return MeanRisk(objective_function=ObjectiveFunction.MAXIMIZE_RATIO, risk_measure=RiskMeasure.VARIANCE)
    if kind == "hrp":
        return HierarchicalRiskParity(risk_measure=RiskMeasure.VARIANCE)
    if kind == "erc":
        return RiskBudgeting(risk_measure=RiskMeasure.VARIANCE)  # budgets default to equal
    raise ValueError(f"{kind!r} has no skfolio estimator; those that do: {', '.join(SKFOLIO_KINDS)}")


def _fit_skfolio(kind: str, X: pd.DataFrame) -> np.ndarray:
    """Long-only weights of a skfolio baseline fitted on the returns X (rows: days, no NaN)."""
    if kind == "meanrisk" and not (X.mean() > 0).any():
        # max Sharpe is undefined when no asset beats the risk-free rate (0): minimum variance instead
        kind = "minvar"
    est = skfolio_estimator(kind)
    try:
        est.fit(X)
        w = np.asarray(est.weights_, dtype=float)
    except Exception as e:  # a solver failure on one window must not end a 20-year backtest
        log.info("%s: the fit on the window ending %s failed (%s); equal weight there", kind,
                 f"{X.index[-1]:%Y-%m-%d}", e)
        return np.full(X.shape[1], 1.0 / X.shape[1])
    w = np.clip(np.nan_to_num(w), 0.0, None)  # solver noise: -1e-9
    return w / w.sum() if w.sum() > 0 else np.full(X.shape[1], 1.0 / X.shape[1])


def _estimate(kind: str, window: pd.DataFrame, has_now: np.ndarray, lookback: int) -> np.ndarray | None:
    """Target weights (over all columns) from the trailing prices `window` (its last row is the
    decision day), or None where the history is too short for any asset."""
    R = window.pct_change(fill_method=None).iloc[1:]
    counts = R.notna().sum().to_numpy()
    min_obs = max(min(MIN_HISTORY, lookback), 2)
    ok = has_now & (counts >= min_obs)
    if not ok.any():
        return None
    w = np.zeros(window.shape[1])
    if kind == "ivol":
        vol = R.std(ddof=1).to_numpy()
        ok &= np.isfinite(vol) & (vol > 0)
        if not ok.any():
            return None
        w[ok] = 1.0 / vol[ok]
        return w / w.sum()
    if kind in SKFOLIO_KINDS:
        X = R.loc[:, ok].dropna(how="any")  # the days every eligible asset has a return
        if len(X) < min_obs:
            return None
        if ok.sum() == 1:
            w[ok] = 1.0
            return w
        w[ok] = _fit_skfolio(kind, X)
        return w
    raise ValueError(f"{kind!r} is not an estimated baseline")


def _momentum(prices: np.ndarray, pos: int, has_now: np.ndarray, lookback: int) -> np.ndarray | None:
    """1/k in the top third (k = ⌈N/3⌉) of the assets by their return from t−lookback to t−21."""
    if pos < lookback or lookback <= MOM_SKIP:
        return None
    score = prices[pos - MOM_SKIP] / prices[pos - lookback] - 1.0
    ok = has_now & np.isfinite(score)
    if not ok.any():
        return None
    k = math.ceil(ok.sum() / 3)
    order = np.argsort(-np.where(ok, score, -np.inf), kind="stable")[:k]
    w = np.zeros(prices.shape[1])
    w[order] = 1.0 / k
    return w


def volman_scale(prices: pd.DataFrame, target: float = VOLMAN_TARGET, window: int = VOLMAN_WINDOW) -> pd.Series:
    """s_t = min(1, target / σ_t) per day of `prices`, σ_t the annualised volatility of the EW
    portfolio's daily returns over the `window` days up to and including t (1 before that)."""
    R = prices.pct_change(fill_method=None)
    ew = R.mean(axis=1, skipna=True).fillna(0.0)  # the daily-rebalanced 1/N of the assets with a return
    vol = ew.rolling(window, min_periods=window).std() * math.sqrt(TRADING_DAYS)
    s = (target / vol).clip(upper=1.0)
    return s.fillna(1.0)  # too little history (or a flat market): plain equal weight


#: the estimated baselines' weights computed in this process, by (kind, rebalance, lookback, the
#: prices' content, the days): a report that reads the same folds again (a walk-forward report
#: repeated or forced, `compare` after a sweep's own report) refits nothing. The weights are a
#: pure function of the key, so a hit gives the same values (labelled with the caller's days and
#: tickers); at most FITTED_CACHE entries (each a days x assets array), least recently used out
_FITTED: dict[tuple, np.ndarray] = {}
FITTED_CACHE = 64


def _fingerprint(prices: pd.DataFrame) -> bytes:
    """A digest of the prices' values, dates and tickers (any change to them changes it)."""
    import hashlib

    h = hashlib.blake2b(digest_size=16)
    h.update(np.ascontiguousarray(prices.to_numpy(dtype=float)).tobytes())
    index = pd.DatetimeIndex(prices.index)
    h.update(index.asi8.tobytes())
    h.update(repr((str(index.dtype), tuple(prices.columns), tuple(map(str, prices.dtypes)))).encode())
    return h.digest()


def baseline_weights(kind: str, prices: pd.DataFrame, days: pd.DatetimeIndex, rebalance="M",
                     lookback: int = TRADING_DAYS) -> pd.DataFrame:
    """Target weights of baseline `kind` (one of BASELINE_KINDS) on the decision days `days`, each
    from the prices up to and including its day; refitted on the rebalance days, held between them."""
    kind = ALIASES.get(kind, kind)
    if kind not in BASELINE_KINDS:
        raise ValueError(f"unknown baseline {kind!r}; choose from {', '.join(BASELINE_KINDS)}")
    if isinstance(lookback, bool) or not isinstance(lookback, (int, np.integer)) or lookback < 2:
        raise ValueError(f"lookback = {lookback!r} must be a whole number of days >= 2")
    days = pd.DatetimeIndex(days)
    loc = prices.index.get_indexer(days)
    if (loc < 0).any():
        raise ValueError(f"decision day {days[loc < 0][0]:%Y-%m-%d} is not a trading day of the prices")
    has = prices.iloc[loc].notna().to_numpy()
    n_tradable = np.maximum(has.sum(1, keepdims=True), 1)
    ew = has / n_tradable
    if kind == "ew":
        return pd.DataFrame(ew, index=days, columns=prices.columns)
    if kind == "volman":  # a daily rule: EW scaled by the day's volatility ratio
        s = volman_scale(prices).to_numpy()[loc]
        return pd.DataFrame(ew * s[:, None], index=days, columns=prices.columns)
    mask = rebalance_mask(days, rebalance)  # checks `rebalance` before any cache hit
    key = (kind, type(rebalance).__name__, rebalance, int(lookback), _fingerprint(prices),
           str(days.dtype), days.asi8.tobytes())
    if key in _FITTED:
        _FITTED[key] = _FITTED.pop(key)  # the most recently used last
        return pd.DataFrame(_FITTED[key].copy(), index=days, columns=prices.columns)
    P = prices.to_numpy(dtype=float)
    out = np.zeros((len(days), prices.shape[1]))
    target = None
    for i, pos in enumerate(loc):
        if mask[i] or target is None:
            if kind == "mom":
                target = _momentum(P, pos, has[i], lookback)
            else:
                target = _estimate(kind, prices.iloc[max(pos - lookback, 0): pos + 1], has[i], lookback)
            if target is None:
                target = ew[i].copy()
        w = np.where(has[i], target, 0.0)  # an asset without a price today cannot be held
        if w.sum() > 0:
            w *= target.sum() / w.sum()
        else:  # everything held has gone: 1/N of what is left until the next refit
            w = ew[i].copy()
        out[i] = w
    _FITTED[key] = out.copy()
    while len(_FITTED) > FITTED_CACHE:
        _FITTED.pop(next(iter(_FITTED)))  # the least recently used
    return pd.DataFrame(out, index=days, columns=prices.columns)
