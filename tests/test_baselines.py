"""The baselines of eqtrade.backtest.baselines: no look-ahead (as a property, for every kind), long-only
fully invested weights, nothing on an asset without a price, refits on rebalance days only, the
rules checked against their definitions (ivol ∝ 1/σ, equal risk contributions, minimum variance
below equal weight, volatility management), name parsing, and the engine's baselines."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from eqtrade.backtest import baselines as B
from eqtrade.backtest.engine import BASELINES, baseline
from eqtrade.backtest.report import baselines_for
from eqtrade.data import load_prices

LOOKBACK = 60  # short windows keep the synthetic panels small


def _panel(n_days=330, n_assets=6, seed=0, late=None, early=None) -> pd.DataFrame:
    """Random-walk prices with different volatilities and drifts; asset `late` lists on day 120,
    asset `early` delists after day 260 (NaN outside)."""
    rng = np.random.default_rng(seed)
    vol = np.linspace(0.006, 0.03, n_assets)
    drift = np.linspace(-0.0004, 0.0008, n_assets)
    r = drift + vol * rng.standard_normal((n_days, n_assets))
    p = 50 * np.exp(np.cumsum(r, axis=0))
    df = pd.DataFrame(p, index=pd.bdate_range("2015-01-01", periods=n_days, name="date"),
                      columns=[f"A{i}" for i in range(n_assets)])
    if late is not None:
        df.iloc[:120, late] = np.nan
    if early is not None:
        df.iloc[261:, early] = np.nan
    return df


@pytest.fixture(scope="module")
def panel():
    return _panel(late=1, early=4)


@pytest.fixture(scope="module")
def days(panel):
    return panel.index[20:-1]


@pytest.fixture(scope="module")
def weights(panel, days):
    return {k: B.baseline_weights(k, panel, days, lookback=LOOKBACK) for k in B.BASELINE_KINDS}


@pytest.mark.parametrize("kind", B.BASELINE_KINDS)
def test_no_look_ahead_prices_after_a_day_leave_its_weights_unchanged(panel, days, weights, kind):
    rng = np.random.default_rng(1)
    for t in (days[150], days[230]):
        later = panel.index > t
        moved = panel.copy()
        moved.loc[later] = moved.loc[later] * np.exp(rng.normal(0, 0.05, (later.sum(), panel.shape[1])))
        moved.iloc[np.flatnonzero(later)[:3], 2] = np.nan  # a later gap too
        w = B.baseline_weights(kind, moved, days, lookback=LOOKBACK)
        before = days <= t
        np.testing.assert_array_equal(w.loc[before].to_numpy(), weights[kind].loc[before].to_numpy())
        if kind != "ew":  # the perturbation is seen once it happened (the check is not vacuous)
            assert not np.allclose(w.loc[~before].to_numpy(), weights[kind].loc[~before].to_numpy())


@pytest.mark.parametrize("kind", B.BASELINE_KINDS)
def test_weights_are_long_only_fully_invested_and_zero_without_a_price(panel, days, weights, kind):
    w = weights[kind]
    assert w.index.equals(days) and list(w.columns) == list(panel.columns)
    assert (w.to_numpy() >= 0).all()
    total = w.sum(axis=1).to_numpy()
    if kind == "volman":
        assert (total <= 1 + 1e-12).all() and (total > 0).all()
    else:
        np.testing.assert_allclose(total, 1.0, atol=1e-9)
    unpriced = panel.loc[days].isna().to_numpy()
    assert unpriced.any() and (w.to_numpy()[unpriced] == 0).all()


def test_rebalance_days_are_month_starts_or_every_kth_day():
    days = pd.bdate_range("2020-01-27", "2020-04-10")
    m = B.rebalance_mask(days, "M")
    assert list(days[m].strftime("%Y-%m-%d")) == ["2020-01-27", "2020-02-03", "2020-03-02", "2020-04-01"]
    assert B.rebalance_mask(days, 5).tolist() == [i % 5 == 0 for i in range(len(days))]
    assert B.rebalance_mask(days, "D").all()
    for bad in (0, "Y", 2.5):
        with pytest.raises(ValueError, match="rebalance"):
            B.rebalance_mask(days, bad)


@pytest.mark.parametrize("kind", ["ivol", "minvar", "meanrisk", "hrp", "erc", "mom"])
@pytest.mark.parametrize("rebalance", ["M", 10])
def test_fitted_rules_change_their_weights_only_on_rebalance_days(kind, rebalance):
    p = _panel(n_days=300, seed=2)  # every asset priced every day: nothing else moves a target
    days = p.index[80:-1]
    w = B.baseline_weights(kind, p, days, rebalance=rebalance, lookback=LOOKBACK).to_numpy()
    changed = np.r_[True, np.abs(np.diff(w, axis=0)).sum(1) > 0]
    mask = B.rebalance_mask(days, rebalance)
    assert not (changed & ~mask).any()
    if kind not in ("mom", "meanrisk"):  # and the continuous rules do move there (a ranking or a corner may not)
        assert changed[mask].all()


def _window_returns(p, day, lookback=LOOKBACK):
    pos = p.index.get_loc(day)
    return p.iloc[pos - lookback: pos + 1].pct_change(fill_method=None).iloc[1:]


def test_inverse_volatility_is_exactly_proportional_to_one_over_the_trailing_volatility():
    p = _panel(seed=3)
    days = p.index[100:-1]
    w = B.baseline_weights("ivol", p, days, lookback=LOOKBACK)
    for d in days[B.rebalance_mask(days, "M")]:
        vol = _window_returns(p, d).std(ddof=1).to_numpy()
        x = w.loc[d].to_numpy() * vol
        np.testing.assert_allclose(x, x[0], rtol=1e-12)


def test_equal_risk_contribution_on_the_fitted_covariance():
    p = _panel(seed=4)
    days = p.index[100:-1]
    w = B.baseline_weights("erc", p, days, lookback=LOOKBACK)
    for d in days[B.rebalance_mask(days, "M")][:4]:
        cov = _window_returns(p, d).cov().to_numpy()
        x = w.loc[d].to_numpy()
        rc = x * (cov @ x)
        np.testing.assert_allclose(rc / rc.sum(), 1 / len(x), rtol=2e-3)


def test_minimum_variance_is_below_equal_weight_and_inverse_volatility_in_sample():
    p = _panel(seed=5)
    days = p.index[100:-1]
    mv, iv = (B.baseline_weights(k, p, days, lookback=LOOKBACK) for k in ("minvar", "ivol"))
    for d in days[B.rebalance_mask(days, "M")]:
        cov = _window_returns(p, d).cov().to_numpy()
        var = lambda x: float(x @ cov @ x)  # noqa: E731
        ew = np.full(p.shape[1], 1 / p.shape[1])
        assert var(mv.loc[d].to_numpy()) <= var(ew) * (1 + 1e-6)
        assert var(mv.loc[d].to_numpy()) <= var(iv.loc[d].to_numpy()) * (1 + 1e-6)


def test_momentum_holds_the_top_third_by_their_12_1_return():
    p = _panel(n_days=400, n_assets=7, seed=6)
    days = p.index[300:-1]
    w = B.baseline_weights("mom", p, days)  # the default lookback: 252 days, the last 21 skipped
    for d in days[B.rebalance_mask(days, "M")]:
        pos = p.index.get_loc(d)
        score = p.iloc[pos - 21] / p.iloc[pos - 252] - 1
        top = set(score.nlargest(math.ceil(7 / 3)).index)
        held = w.loc[d]
        assert set(held[held > 0].index) == top and np.allclose(held[held > 0], 1 / 3)


def test_volatility_managed_ew_scales_down_when_volatility_rises():
    rng = np.random.default_rng(7)
    n = 200
    r = rng.normal(0, 0.004, (n, 5))
    r[120:] *= 15  # a calm market, then a storm
    p = pd.DataFrame(100 * np.exp(np.cumsum(r, 0)), index=pd.bdate_range("2016-01-01", periods=n))
    days = p.index[30:-1]
    s = B.baseline_weights("volman", p, days).sum(axis=1)
    assert (s[s.index < p.index[120]] == 1).all()  # calm: fully invested EW
    assert s[p.index[141]:].max() < 0.6  # the storm: mostly cash
    ew = p.pct_change().mean(axis=1)
    d = p.index[150]
    hand = min(1.0, 0.15 / (ew.loc[:d].iloc[-21:].std() * math.sqrt(252)))
    assert s.loc[d] == pytest.approx(hand, rel=1e-12)


def test_a_rule_without_enough_history_is_equal_weight():
    p = _panel(seed=8)
    days = p.index[5:30]
    for kind in ("ivol", "minvar", "hrp", "erc", "mom"):
        w = B.baseline_weights(kind, p, days, lookback=LOOKBACK)
        np.testing.assert_allclose(w.to_numpy(), 1 / p.shape[1])


def test_named_baselines_parse_lists_and_all_and_name_the_choices():
    assert B.named_baselines("ivol, minvar") == ("ivol", "minvar")
    assert B.named_baselines("all") == B.BASELINE_KINDS
    assert B.named_baselines("HRP,hrp,equal-weight") == ("hrp", "ew")
    with pytest.raises(ValueError, match="unknown baseline 'risk-parity'; choose from ew, ivol, minvar"):
        B.named_baselines("ivol,risk-parity")
    with pytest.raises(ValueError, match="no baseline"):
        B.named_baselines(" , ")
    with pytest.raises(ValueError, match="choose from"):
        B.baseline_weights("nope", _panel(), _panel().index[:5])
    with pytest.raises(ValueError, match="no skfolio estimator"):
        B.skfolio_estimator("ivol")
    assert type(B.skfolio_estimator("hrp")).__name__ == "HierarchicalRiskParity"


@pytest.fixture(scope="module")
def stocks():
    return load_prices(["AAPL", "JNJ", "XOM", "KO", "JPM"], start="2017-06-01", end="2020-12-31")


def test_every_engine_baseline_trades_the_days_of_equal_weight_with_a_readable_name(stocks):
    split = ("2019-01-01", "2020-12-31")
    ref = baseline("equal-weight", stocks, split, 32)
    names = set()
    for kind in BASELINES:
        b = baseline(kind, stocks, split, 32, 10.0, "drift")
        assert b.returns.index.equals(ref.returns.index), kind
        assert b.returns.notna().all() and b.name == b.returns.name
        names.add(b.name)
    assert len(names) == len(BASELINES)
    assert {"equal weight (daily)", "buy & hold EW", "cash", "inverse volatility", "minimum variance",
            "volatility-managed EW"} <= names
    with pytest.raises(ValueError, match="unknown baseline 'ew2'"):
        baseline("ew2", stocks, split)


def test_baselines_for_adds_the_kinds_asked_for(stocks):
    ctx = {"split": ("2019-01-01", "2019-12-31"), "window": 32, "cost_bps": 10.0, "cost_model": "drift"}
    simple = ["equal weight (daily)", "buy & hold EW", "S&P 500 price index (excl. dividends)", "cash"]
    assert [b.name for b in baselines_for(stocks, ctx, kinds="none")] == simple
    more = [b.name for b in baselines_for(stocks, ctx, kinds="ivol,hrp")]
    assert more == simple + ["inverse volatility", "hierarchical risk parity"]
    default = [b.name for b in baselines_for(stocks, ctx)]  # the cheap rules by default
    assert default == simple + ["inverse volatility", "momentum 12-1 (top third)", "volatility-managed EW"]
    assert len(baselines_for(stocks, ctx, kinds=["all"])) == len(BASELINES)
    one = baselines_for(stocks[["AAPL"]], ctx, kinds="all")  # one asset: the weighting rules are that asset
    assert [b.name for b in one] == ["buy & hold AAPL", "S&P 500 price index (excl. dividends)", "cash"]


def test_import_eqtrade_does_not_import_skfolio():
    code = "import sys, eqtrade, eqtrade.backtest, eqtrade.backtest.baselines; print('skfolio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_fitted_weights_are_cached_by_content_and_a_changed_price_is_refitted(monkeypatch):
    """A second call with the same prices and days returns the first fit (no solver run); the
    caller's copy is its own; any change to a price, even in place, is a new key."""
    panel = _panel()
    days = panel.index[LOOKBACK + 5:]
    monkeypatch.setattr(B, "_FITTED", {})
    first = B.baseline_weights("minvar", panel, days, lookback=LOOKBACK)
    fits = []
    real = B._fit_skfolio
    monkeypatch.setattr(B, "_fit_skfolio", lambda kind, X: fits.append(kind) or real(kind, X))
    again = B.baseline_weights("minvar", panel, days, lookback=LOOKBACK)
    assert fits == [] and again.equals(first)
    again.iloc[:] = 0.0  # the caller's frame, not the cache's
    assert B.baseline_weights("minvar", panel, days, lookback=LOOKBACK).equals(first) and fits == []
    panel.iloc[LOOKBACK, 2] *= 1.5  # in place: a price that every later window reads
    changed = B.baseline_weights("minvar", panel, days, lookback=LOOKBACK)
    assert fits and not changed.equals(first)
    monkeypatch.setattr(B, "_FITTED", {})
    fresh = B.baseline_weights("minvar", panel, days, lookback=LOOKBACK)
    pd.testing.assert_frame_equal(changed, fresh)
    assert len(B._FITTED) == 1


def test_the_fitted_cache_is_bounded_and_drops_the_least_recently_used(monkeypatch):
    monkeypatch.setattr(B, "_FITTED", {})
    monkeypatch.setattr(B, "FITTED_CACHE", 2)
    panel = _panel()
    w = {start: B.baseline_weights("ivol", panel, panel.index[start:], lookback=LOOKBACK) for start in (70, 80)}
    B.baseline_weights("ivol", panel, panel.index[70:], lookback=LOOKBACK)  # 70 used again: 80 is the oldest
    B.baseline_weights("ivol", panel, panel.index[90:], lookback=LOOKBACK)
    assert len(B._FITTED) == 2
    kept = {len(k[-1]) // 8 for k in B._FITTED}  # the days of each key (int64 nanoseconds)
    assert kept == {len(panel) - 70, len(panel) - 90}
    assert B.baseline_weights("ivol", panel, panel.index[80:], lookback=LOOKBACK).equals(w[80])  # refitted alike


@pytest.mark.parametrize("change", ["kind", "lookback", "rebalance", "days", "tickers", "dtype"])
def test_every_input_of_a_fit_is_in_its_cache_key(monkeypatch, change):
    """Changing any one input is a miss (a solver run), never the other input's weights."""
    panel = _panel()
    days = panel.index[LOOKBACK + 5:]
    kw = dict(kind="minvar", prices=panel, days=days, rebalance="M", lookback=LOOKBACK)
    monkeypatch.setattr(B, "_FITTED", {})
    B.baseline_weights(**kw)
    fits = []
    real = B._fit_skfolio
    monkeypatch.setattr(B, "_fit_skfolio", lambda kind, X: fits.append(kind) or real(kind, X))
    other = {"kind": dict(kind="erc"), "lookback": dict(lookback=LOOKBACK + 10), "rebalance": dict(rebalance="W"),
             "days": dict(days=days[1:]), "tickers": dict(prices=panel.rename(columns=lambda c: c + "x")),
             "dtype": dict(prices=panel.astype("float32"))}[change]
    got = B.baseline_weights(**{**kw, **other})
    assert fits, change
    if change == "tickers":
        assert list(got.columns) == [c + "x" for c in panel.columns]


def test_a_bad_rebalance_is_refused_even_after_a_fit_of_the_same_number(monkeypatch):
    monkeypatch.setattr(B, "_FITTED", {})
    panel = _panel()
    B.baseline_weights("ivol", panel, panel.index[70:], rebalance=21, lookback=LOOKBACK)
    with pytest.raises(ValueError, match="rebalance"):
        B.baseline_weights("ivol", panel, panel.index[70:], rebalance="21", lookback=LOOKBACK)
