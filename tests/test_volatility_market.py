"""The planted market where only volatility timing pays (issue 24; bench/bench_volatility.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))


def test_the_market_is_reproducible_and_its_regime_sets_volatility_and_drift():
    from eqtrade.data.synthetic import volatility_market

    a, b = volatility_market(4, seed=3), volatility_market(4, seed=3)
    pd.testing.assert_frame_equal(a, b)
    storm = a.attrs["storm"]
    assert 0.15 < storm.mean() < 0.45  # about 100 stormy days per 350
    R = a.pct_change().fillna(0.0).to_numpy()[1:]
    s = storm[1:]
    ratio = R[s].std() / R[~s].std()
    assert 3.5 < ratio < 4.5  # storm_vol / calm_vol = 4
    ew = R.mean(1)
    assert ew[~s].mean() > 4e-4 and abs(ew[s].mean()) < 4e-4  # calm drift 6e-4, none in storms
    assert not volatility_market(4, seed=4).equals(a)


def test_the_rule_beats_equal_weight_by_at_least_5_paired_standard_errors_on_the_test_span():
    import bench_volatility as bv

    ref = bv.rule_gain(bv.market(10, 0), n_boot=400)
    assert ref["gain"] > 0.2 and ref["gain_in_se"] >= 5.0, ref["gain_in_se"]
    assert ref["volman"].turnover < 0.05


def test_random_actions_fail_the_criterion():
    import bench_volatility as bv

    prices = bv.market(10, 0)
    r = bv.random_policy(prices, bv.rule_gain(prices, n_boot=200))
    assert not r["passes"] and r["share"] < 0


def test_the_exact_scale_observation_is_blind_to_the_regime_level():
    """Scaling the whole market's returns by c leaves an exact-scale observation unchanged (so no
    exact-scale policy can act on the level), while the relaxed one's levels move by log c."""
    from eqtrade.envs.factory import make_env
    from eqtrade.envs.wrappers import fitted_vol_ref

    import bench_volatility as bv

    prices = bv.market(3, 1).loc["1900":"1905"]
    R = prices.pct_change().fillna(0.0).to_numpy()
    scaled = pd.DataFrame(100.0 * np.cumprod(1.0 + 2.5 * R, axis=0), index=prices.index, columns=prices.columns)
    kw = dict(window=32, split=["1901-01-01", "1905-12-31"], full_period=True)
    e1, e2 = (make_env("portfolio", prices=p, scale="exact", **kw) for p in (prices, scaled))
    np.testing.assert_allclose(e1.reset(seed=0)[0], e2.reset(seed=0)[0], rtol=1e-9, atol=1e-12)
    r1 = make_env("portfolio", prices=prices, scale="relaxed", **kw)
    r2 = make_env("portfolio", prices=scaled, scale="relaxed", vol_ref=fitted_vol_ref(r1), **kw)
    o1, o2 = r1.reset(seed=0)[0], r2.reset(seed=0)[0]
    levels = slice(32 * 3, 36 * 3)
    np.testing.assert_allclose(o2[levels] - o1[levels], np.log(2.5), atol=1e-9)


#: the learner's settings of bench/bench_volatility.py's measured row (docs/results.md §1e)
LEARNER = dict(steps=15000, family="plain")


@pytest.fixture
def bench_env(monkeypatch):
    """bench_volatility with the learner's env settings of §1e, restored after the test."""
    import bench_volatility as bv

    for k, v in dict(window=8, turnover_penalty_bps=10.0, action_map="per_asset").items():
        monkeypatch.setitem(bv.ENV, k, v)
    return bv


@pytest.mark.slow
def test_an_exact_scale_agent_holds_the_same_book_in_both_regimes(bench_env):
    """It cannot see the level: whatever it learns, its exposure does not follow the regime."""
    bv = bench_env
    r = bv.run("exact", seed=0, **LEARNER)
    assert abs(r["gross_calm"] - r["gross_storm"]) < 0.05, r


@pytest.mark.slow
def test_a_plain_scale_agent_holds_less_in_storms(bench_env):
    """With the volatility levels read freely the learner does time the regime (measured: 0.94
    calm, 0.68 stormy); what it earns for it is reported by the bench, not asserted here."""
    bv = bench_env
    r = bv.run("plain", seed=0, **LEARNER)
    assert r["gross_calm"] - r["gross_storm"] > 0.15, r


#: the relaxed scale's setting of docs/results.md §1e (bench_volatility.py --family plain --steps
#: 30000 --window 8 --penalty 20 --risk-aversion 10): κ chosen on draw 5, confirmed on draw 6
RISK_LEARNER = dict(steps=30000, family="plain", market_seed=6)


@pytest.fixture
def risk_env(monkeypatch):
    """bench_volatility with the risk-averse training env of §1e, restored after the test."""
    import bench_volatility as bv

    for k, v in dict(window=8, turnover_penalty_bps=20.0, action_map="per_asset", risk_aversion=10.0).items():
        monkeypatch.setitem(bv.ENV, k, v)
    return bv


@pytest.mark.slow
def test_the_relaxed_scale_agent_captures_half_the_rules_gain(risk_env):
    """Issue 24's criterion: at least half of the volatility-managed rule's Sharpe gain over EW out
    of sample, turnover < 0.3/day, on a test span where the rule's gain is >= 5 paired SE."""
    bv = risk_env
    prices = bv.market(10, RISK_LEARNER["market_seed"])
    ref = bv.rule_gain(prices)
    assert ref["gain_in_se"] >= 5, ref["gain_in_se"]
    r = bv.run("relaxed", seed=0, prices=prices, ref=ref, **RISK_LEARNER)
    assert r["passes"] and r["gross_calm"] - r["gross_storm"] > 0.3, r


#: the default suite's learning check on this market (issue 24: one family in the default suite):
#: the relaxed scale with the risk-averse reward and its level weights learning 10x faster
#: (level_gain 10), 4 000 steps on draw 7, scored on the valid span (1940-1949; the test span is
#: the slow test's). Measured (bench/bench_volatility.py's run with these settings and
#: --split valid, seeds 0, 1, 2): gross exposure storm / calm 0.195 / 0.281, 0.180 / 0.441,
#: 0.320 / 0.529 (ratios 0.69, 0.41, 0.60; turnover 0.150, 0.070, 0.160/day); the plain scale at
#: the same 4 000 steps (level_gain 1): ratios 0.67, 1.22, 1.60. Seed 1 runs here. At 4 000 steps
#: the book is small (gross under 0.6): this checks that the level weights, zero at the start,
#: learn to time the regime, not what that earns.
QUICK = dict(steps=4000, family="plain", seed=1)


def test_the_relaxed_scale_learns_from_its_zero_level_weights_to_hold_less_in_storms(risk_env, monkeypatch):
    from eqtrade.run import PORTFOLIO_AGENT

    bv = risk_env
    monkeypatch.setitem(bv.SCORED, "span", bv.VALID)
    prices = bv.market(10, 7)
    opts = {"encoder": {**PORTFOLIO_AGENT["encoder"], "level_gain": 10.0}}
    r = bv.run("relaxed", prices=prices, ref=bv.rule_gain(prices, n_boot=200), agent_opts=opts, **QUICK)
    assert r["gross_storm"] < 0.75 * r["gross_calm"], r
    assert r["turnover"] < 0.3, r
