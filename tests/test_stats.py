"""Paired statistics of daily returns (`eqtrade.backtest.stats`): closed forms on simulated data,
properties (symmetry, monotonicity, determinism), the null behaviour of the interval and the test
(coverage, rejection rate), and a worked example of the deflated Sharpe ratio."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from eqtrade.backtest import stats as S

P = 252


def normal(n, mu=0.0, sd=0.01, seed=0):
    return np.random.default_rng(seed).normal(mu, sd, n)


def correlated(n, rho, mu=(4e-4, 4e-4), sd=(0.01, 0.01), rng=None):
    rng = np.random.default_rng(rng)
    z1, z2 = rng.standard_normal(n), rng.standard_normal(n)
    a = mu[0] + sd[0] * z1
    b = mu[1] + sd[1] * (rho * z1 + math.sqrt(1 - rho ** 2) * z2)
    return a, b


# ------------------------------------------------------------------------------------------- Sharpe
def test_sharpe_closed_form_and_degenerate_cases():
    r = normal(500, 5e-4, 0.01, seed=1)
    assert S.sharpe(r) == pytest.approx(math.sqrt(P) * r.mean() / r.std(ddof=1), rel=1e-12)
    assert S.sharpe(r, periods=12) == pytest.approx(math.sqrt(12) * r.mean() / r.std(ddof=1), rel=1e-12)
    assert S.sharpe(pd.Series(r)) == S.sharpe(r)
    assert math.isnan(S.sharpe([0.01]))
    assert math.isnan(S.sharpe([]))
    assert math.isnan(S.sharpe(np.full(10, 0.001)))
    assert math.isnan(S.sharpe_se(np.full(10, 0.001)))
    with pytest.raises(ValueError, match="non-finite"):
        S.sharpe([0.01, np.nan, 0.02])
    with pytest.raises(ValueError, match="1-D"):
        S.sharpe(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="periods"):
        S.sharpe(r, periods=0)


def test_sharpe_se_is_lo_for_normal_returns_and_matches_the_spread_of_estimates():
    n = 2000
    r = normal(n, 6e-4, 0.01, seed=2)
    sr = r.mean() / r.std(ddof=1)
    lo = math.sqrt(P) * math.sqrt((1 + sr ** 2 / 2) / n)
    assert S.sharpe_se(r) == pytest.approx(lo, rel=0.02)  # skew ≈ 0, kurtosis ≈ 3
    # the spread of Sharpe estimates over many samples (true per-period SR 0.1, n = 250)
    sims = np.random.default_rng(3).normal(0.001, 0.01, (3000, 250))
    est = math.sqrt(P) * sims.mean(axis=1) / sims.std(axis=1, ddof=1)
    se = np.median([S.sharpe_se(x) for x in sims[:200]])
    assert est.std(ddof=1) == pytest.approx(se, rel=0.06)
    assert se == pytest.approx(math.sqrt(P) * math.sqrt((1 + 0.1 ** 2 / 2) / 250), rel=0.03)


def test_sharpe_se_grows_with_fat_tails_and_negative_skew():
    rng = np.random.default_rng(4)
    n = 5000
    t5 = 0.3 + rng.standard_t(5, n)  # per-period SR ≈ 0.3/sqrt(5/3), kurtosis 9
    sr = t5.mean() / t5.std(ddof=1)
    normal_se = math.sqrt(P) * math.sqrt((1 + sr ** 2 / 2) / n)
    assert S.sharpe_se(t5) > 1.03 * normal_se
    crash = 0.2 - rng.lognormal(0.0, 0.8, n) + math.exp(0.32)  # negatively skewed, positive mean
    sr = crash.mean() / crash.std(ddof=1)
    assert st.skew(crash) < -1
    assert S.sharpe_se(crash) > 1.05 * math.sqrt(P) * math.sqrt((1 + sr ** 2 / 2) / n)


# ---------------------------------------------------------------------------------------------- PSR
def test_psr_is_one_half_at_the_observed_sharpe_and_monotone_in_n():
    r = normal(750, 5e-4, 0.01, seed=5)
    assert S.probabilistic_sharpe(r, sr0=S.sharpe(r)) == pytest.approx(0.5, abs=1e-12)
    assert S.psr_from_moments(0.07, 0.07, 100, -1.0, 6.0) == pytest.approx(0.5, abs=1e-15)
    ns = [10, 50, 250, 1000, 5000]
    up = [S.psr_from_moments(0.05, 0.0, n, -0.5, 5.0) for n in ns]
    down = [S.psr_from_moments(-0.05, 0.0, n, -0.5, 5.0) for n in ns]
    assert all(x < y for x, y in zip(up, up[1:])) and up[-1] > 0.99
    assert all(x > y for x, y in zip(down, down[1:])) and down[-1] < 0.01
    # annual sr0 in probabilistic_sharpe is the per-period one of psr_from_moments times sqrt(periods)
    sr, g3, g4 = r.mean() / r.std(ddof=1), st.skew(r), st.kurtosis(r, fisher=False)
    assert S.probabilistic_sharpe(r, sr0=0.5) == pytest.approx(
        S.psr_from_moments(sr, 0.5 / math.sqrt(P), len(r), g3, g4), rel=1e-12)
    # closed form for normal moments
    assert S.psr_from_moments(0.1, 0.0, 101, 0.0, 3.0) == pytest.approx(
        st.norm.cdf(0.1 * 10 / math.sqrt(1 + 0.5 * 0.01)), rel=1e-12)


def test_psr_refuses_bad_moments():
    with pytest.raises(ValueError, match="n = 1"):
        S.psr_from_moments(0.1, 0.0, 1, 0.0, 3.0)
    with pytest.raises(ValueError, match="excess"):
        S.psr_from_moments(0.1, 0.0, 100, 0.0, 0.0)  # an excess kurtosis passed as the kurtosis
    with pytest.raises(ValueError, match="sr0"):
        S.probabilistic_sharpe(normal(10), sr0=float("nan"))


# ---------------------------------------------------------------------------------------------- DSR
def test_expected_max_sharpe_grows_with_the_trials_and_is_zero_for_one():
    assert S.expected_max_sharpe(1, 0.7) == 0.0
    values = [S.expected_max_sharpe(n, 1.0) for n in (1, 2, 3, 5, 10, 100, 1000, 10 ** 6)]
    assert all(x < y for x, y in zip(values, values[1:]))
    assert S.expected_max_sharpe(100, 2.0) == pytest.approx(2 * S.expected_max_sharpe(100, 1.0), rel=1e-14)
    assert S.expected_max_sharpe(50, 0.0) == 0.0
    # close to the simulated mean of the maximum of N standard normals
    mx = np.random.default_rng(6).standard_normal((4000, 100)).max(axis=1).mean()
    assert S.expected_max_sharpe(100, 1.0) == pytest.approx(mx, rel=0.03)
    for bad in (0, 2.5, -3):
        with pytest.raises(ValueError, match="n_trials"):
            S.expected_max_sharpe(bad, 1.0)
    with pytest.raises(ValueError, match="sr_std"):
        S.expected_max_sharpe(10, -0.1)


def test_deflated_sharpe_worked_example_of_bailey_and_lopez_de_prado_2014():
    """The paper's example: N = 100 trials whose annualised Sharpe ratios have variance 1/2, 250
    days a year, the best trial SR 2.5 (annual) over T = 1250 days with skew -3 and kurtosis 10:
    SR0 ≈ 0.1132 per day and DSR ≈ 0.9004. Recomputed here by hand from the closed forms."""
    g = 0.5772156649015329
    n, sr_std, periods = 100, math.sqrt(0.5), 250
    by_hand = sr_std * ((1 - g) * st.norm.ppf(1 - 1 / n) + g * st.norm.ppf(1 - 1 / (n * math.e)))
    assert by_hand == pytest.approx(1.78941, abs=1e-5)  # annual
    assert S.expected_max_sharpe(n, sr_std) == pytest.approx(by_hand, rel=1e-12)
    sr0 = by_hand / math.sqrt(periods)
    assert sr0 == pytest.approx(0.1132, abs=1e-4)  # the paper's per-period SR0
    sr, t, skew, kurt = 2.5 / math.sqrt(periods), 1250, -3.0, 10.0
    dsr = st.norm.cdf((sr - sr0) * math.sqrt(t - 1) / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr ** 2))
    assert dsr == pytest.approx(0.9004, abs=1e-4)  # the paper's DSR
    assert S.psr_from_moments(sr, sr0, t, skew, kurt) == pytest.approx(dsr, rel=1e-12)
    # and on a series: deflated_sharpe is the PSR at the annual SR0 of its annual sr_std
    r = normal(1250, 6e-4, 0.01, seed=7)
    m = r.mean() / r.std(ddof=1), st.skew(r), st.kurtosis(r, fisher=False)
    assert S.deflated_sharpe(r, n, sr_std, periods=periods) == pytest.approx(
        S.psr_from_moments(m[0], sr0, len(r), m[1], m[2]), rel=1e-12)


def test_dsr_is_at_most_psr_and_equal_for_one_trial():
    for seed in range(5):
        r = normal(500, 4e-4, 0.01, seed=10 + seed)
        psr = S.probabilistic_sharpe(r)
        assert S.deflated_sharpe(r, 1, 0.5) == pytest.approx(psr, rel=1e-14)
        dsrs = [S.deflated_sharpe(r, n, 0.5) for n in (2, 10, 100)]
        assert all(d <= psr for d in dsrs) and dsrs[0] >= dsrs[1] >= dsrs[2]


# ---------------------------------------------------------------------------------------- bootstrap
def test_default_block():
    assert [S.default_block(n) for n in (1, 2, 7, 8, 27, 1000, 2197, 2520)] == [1, 1, 2, 2, 3, 10, 13, 14]
    with pytest.raises(ValueError, match="n = 0"):
        S.default_block(0)


def _breaks(idx, n):
    return idx[:, 1:] != (idx[:, :-1] + 1) % n


def test_stationary_bootstrap_indices_shape_range_runs_and_mean_block():
    n, block = 600, 8.0
    idx = S.stationary_bootstrap_indices(n, block, 400, np.random.default_rng(0))
    assert idx.shape == (400, n) and np.issubdtype(idx.dtype, np.integer)
    assert idx.min() >= 0 and idx.max() <= n - 1
    # each row is runs i, i+1, ... (mod n): a break is where a new run starts, with probability
    # 1/block at each day (a new run that happens to continue the last is not seen: (1 - 1/n))
    brk = _breaks(idx, n)
    rate = brk.mean()
    assert 1 / rate == pytest.approx(block / (1 - 1 / n), rel=0.03)
    # the runs' lengths are geometric: P(length > k) = (1 - 1/block)^k within a row
    lengths = np.diff(np.flatnonzero(np.concatenate([[True], brk[0], [True]])))
    assert lengths.sum() == n
    runs = np.concatenate([np.diff(np.flatnonzero(np.concatenate([[True], b, [True]])))[1:-1] for b in brk])
    assert runs.mean() == pytest.approx(block, rel=0.05)
    assert np.mean(runs > 10) == pytest.approx((1 - 1 / block) ** 10, abs=0.02)
    # runs wrap around from n - 1 to 0
    wrap = (idx[:, :-1] == n - 1) & (idx[:, 1:] == 0)
    assert wrap.sum() > 0
    # the run starts are uniform over the days
    starts = idx[:, 1:][brk]
    assert st.chisquare(np.bincount(starts // 60, minlength=10)).pvalue > 0.001
    # block 1: a new run every day (an iid bootstrap); a huge block: one run a row
    iid = S.stationary_bootstrap_indices(50, 1, 5, 3)
    assert iid.shape == (5, 50)
    one = S.stationary_bootstrap_indices(50, 1e12, 5, 3)
    assert not _breaks(one, 50).any()
    assert (S.stationary_bootstrap_indices(n, block, 3, 9) == S.stationary_bootstrap_indices(n, block, 3, 9)).all()
    for kw in (dict(n=0, block=2, n_boot=3), dict(n=5, block=0.5, n_boot=3), dict(n=5, block=2, n_boot=0)):
        with pytest.raises(ValueError):
            S.stationary_bootstrap_indices(**kw)


# ------------------------------------------------------------------------------------------ ΔSharpe
def test_delta_sharpe_identical_deterministic_antisymmetric():
    a, b = correlated(400, 0.6, mu=(6e-4, 2e-4), rng=11)
    same = S.delta_sharpe(a, a.copy(), n_boot=300)
    assert (same["delta"], same["lo"], same["hi"], same["se"]) == (0.0, 0.0, 0.0, 0.0)
    d1 = S.delta_sharpe(a, b, n_boot=300, seed=5)
    assert d1 == S.delta_sharpe(a, b, n_boot=300, seed=5)
    assert d1 != S.delta_sharpe(a, b, n_boot=300, seed=6)
    assert set(d1) == {"delta", "lo", "hi", "se", "block", "n_boot", "seed"}
    assert (d1["block"], d1["n_boot"], d1["seed"]) == (S.default_block(400), 300, 5)
    assert d1["delta"] == pytest.approx(S.sharpe(a) - S.sharpe(b), rel=1e-12)
    assert d1["lo"] <= d1["delta"] <= d1["hi"] and d1["se"] > 0
    d2 = S.delta_sharpe(b, a, n_boot=300, seed=5)
    assert d2["delta"] == -d1["delta"]
    assert d2["lo"] == pytest.approx(-d1["hi"], abs=1e-12) and d2["hi"] == pytest.approx(-d1["lo"], abs=1e-12)
    assert d2["se"] == pytest.approx(d1["se"], rel=1e-12)
    # a wider level gives a wider interval, from the same resamples
    d99 = S.delta_sharpe(a, b, n_boot=300, seed=5, level=0.99)
    assert d99["lo"] <= d1["lo"] and d99["hi"] >= d1["hi"]
    assert S.delta_sharpe(a, b, n_boot=300, block=20)["block"] == 20


def test_delta_sharpe_refuses_bad_input():
    a = normal(50)
    with pytest.raises(ValueError, match="a has 50, b has 49"):
        S.delta_sharpe(a, a[:-1])
    with pytest.raises(ValueError, match="at least 3"):
        S.delta_sharpe(a[:2], a[:2])
    with pytest.raises(ValueError, match="level"):
        S.delta_sharpe(a, a, level=95)
    with pytest.raises(ValueError, match="n_boot"):
        S.delta_sharpe(a, a, n_boot=0)


def test_delta_sharpe_interval_covers_zero_under_the_null():
    """200 pairs of correlated series with the same true Sharpe (different volatilities): the 95%
    interval covers 0 in 88%-99% of them."""
    rng = np.random.default_rng(12)
    n_pairs, n = 200, 500
    cover = 0
    for k in range(n_pairs):
        a, b = correlated(n, 0.5, mu=(5e-4, 1e-3), sd=(0.01, 0.02), rng=rng)  # both SR 0.05/day
        d = S.delta_sharpe(a, b, n_boot=300, seed=k)
        cover += d["lo"] <= 0 <= d["hi"]
    print(f"null coverage of the 95% ΔSharpe interval: {cover}/{n_pairs} = {cover / n_pairs:.3f}")
    assert 0.88 <= cover / n_pairs <= 0.99


def test_the_interval_covers_the_true_difference_of_two_independent_strategies():
    """400 seeded draws of two independent random strategies whose true annual Sharpe difference
    is 0.794: the 95% interval covers it in 91.5%-98.5% of them (95% ± 3 binomial standard errors
    of 400 draws, 1.1% each: a correct interval fails a narrower band by chance; bench/
    bench_stats_null.py measures the coverage on 2000 draws)."""
    true = 5e-4 / 0.01 * math.sqrt(P)
    rng = np.random.default_rng(0)
    cover = 0
    for k in range(400):
        a, b = rng.normal(5e-4, 0.01, 750), rng.normal(0.0, 0.012, 750)
        d = S.delta_sharpe(a, b, n_boot=500, seed=k)
        cover += d["lo"] <= true <= d["hi"]
    print(f"coverage of the true difference: {cover}/400 = {cover / 400:.3f}")
    assert 0.915 <= cover / 400 <= 0.985


def test_delta_sharpe_interval_covers_zero_under_volatility_clustering():
    """The same null with a shared, persistent volatility regime (AR(1) log-volatility, 0.97):
    the days are not iid, the block bootstrap still covers 0 in 88%-99% of 200 pairs."""
    from scipy.signal import lfilter

    rng = np.random.default_rng(5)
    n, cover = 500, 0
    for k in range(200):
        h = lfilter([0.25], [1, -0.97], rng.standard_normal(n))
        v = np.exp(h) / np.exp(h).mean()
        a, b = correlated(n, 0.5, mu=(5e-4, 1e-3), sd=(0.01, 0.02), rng=rng)
        d = S.delta_sharpe(v * a, v * b, n_boot=300, seed=k)  # scaling both by v keeps their Sharpes equal
        cover += d["lo"] <= 0 <= d["hi"]
    print(f"null coverage under volatility clustering: {cover}/200 = {cover / 200:.3f}")
    assert 0.88 <= cover / 200 <= 0.99


def test_delta_sharpe_detects_a_planted_difference():
    a, b = correlated(1000, 0.8, mu=(2e-3, 0.0), rng=13)  # SR ≈ 3.2 vs 0 annual, correlated
    d = S.delta_sharpe(a, b, n_boot=500)
    assert d["lo"] > 0 and d["delta"] > 2
    d = S.delta_sharpe(b, a, n_boot=500)
    assert d["hi"] < 0


# ---------------------------------------------------------------------------------------------- JKM
def test_jkm_rejection_rate_under_the_null_and_power():
    rng = np.random.default_rng(14)
    ps = np.array([S.jobson_korkie_memmel(*correlated(500, 0.5, mu=(5e-4, 1e-3), sd=(0.01, 0.02), rng=rng))[1]
                   for _ in range(600)])
    rate = np.mean(ps < 0.05)
    assert 0.025 <= rate <= 0.085
    assert st.kstest(ps, "uniform").pvalue > 0.001  # p-values uniform-ish
    a, b = correlated(1000, 0.8, mu=(2e-3, 0.0), rng=15)
    z, p = S.jobson_korkie_memmel(a, b)
    assert z > 0 and p < 1e-6
    z2, p2 = S.jobson_korkie_memmel(b, a)
    assert z2 == pytest.approx(-z, rel=1e-12) and p2 == pytest.approx(p, rel=1e-9)
    assert all(math.isnan(v) for v in S.jobson_korkie_memmel(a, a))
    with pytest.raises(ValueError, match="differ in length"):
        S.jobson_korkie_memmel(a, b[:10])


def test_jkm_statistic_by_hand():
    a, b = correlated(300, 0.3, mu=(8e-4, 2e-4), rng=16)
    ma, mb = a.mean(), b.mean()
    va, vb, cab = a.var(ddof=1), b.var(ddof=1), np.cov(a, b)[0, 1]
    sa, sb = math.sqrt(va), math.sqrt(vb)
    theta = (2 * va * vb - 2 * sa * sb * cab + ma ** 2 * vb / 2 + mb ** 2 * va / 2
             - ma * mb / (2 * sa * sb) * (cab ** 2 + va * vb)) / 300
    z = (sb * ma - sa * mb) / math.sqrt(theta)
    assert S.jobson_korkie_memmel(a, b) == pytest.approx((z, 2 * st.norm.sf(abs(z))), rel=1e-10)


# ------------------------------------------------------------------------------------ IR, beta, cost
def test_information_ratio_of_a_planted_alpha():
    rng = np.random.default_rng(17)
    b = rng.normal(3e-4, 0.012, 2000)
    alpha, te_daily = 2e-4, 0.003
    e = rng.normal(0, te_daily, 2000)
    a = b + alpha + e
    ir, t, te = S.information_ratio(a, b)
    d = a - b
    assert ir == pytest.approx(math.sqrt(P) * d.mean() / d.std(ddof=1), rel=1e-12)
    assert t == pytest.approx(ir * math.sqrt(2000 / P), rel=1e-12)
    assert te == pytest.approx(te_daily * math.sqrt(P), rel=0.05)
    assert ir == pytest.approx(alpha / te_daily * math.sqrt(P), abs=4 * math.sqrt(P / 2000))  # ± 4 SE
    assert S.information_ratio(b, a)[:2] == pytest.approx((-ir, -t), rel=1e-12)
    # a constant daily alpha: no tracking error, the IR is undefined
    ir0, t0, te0 = S.information_ratio(b + alpha, b)
    assert math.isnan(ir0) and math.isnan(t0) and te0 == 0.0


def test_beta_recovers_a_planted_beta():
    rng = np.random.default_rng(18)
    m = rng.normal(4e-4, 0.01, 3000)
    a = 1e-4 + 1.7 * m + rng.normal(0, 0.005, 3000)
    assert S.beta(a, m) == pytest.approx(1.7, abs=0.05)
    assert S.beta(2 * m - 0.001, m) == pytest.approx(2.0, rel=1e-12)
    assert math.isnan(S.beta(a, np.full(3000, 0.001)))
    with pytest.raises(ValueError, match="differ in length"):
        S.beta(a, m[:-1])


def test_break_even_cost_equalises_the_sharpes():
    rng = np.random.default_rng(19)
    n = 1000
    b = rng.normal(3e-4, 0.01, n)
    gross = 0.5 * b + rng.normal(1e-3, 0.009, n)
    turnover = rng.uniform(0.05, 0.4, n)
    c = S.break_even_cost_bps(gross, turnover, b)
    assert 0 < c < 1e4
    assert S.sharpe(gross - c * 1e-4 * turnover) == pytest.approx(S.sharpe(b), abs=1e-8)
    assert S.sharpe(gross - 1.1 * c * 1e-4 * turnover) < S.sharpe(b) < S.sharpe(gross - 0.9 * c * 1e-4 * turnover)
    # constant turnover: the mean drops, the volatility stays: closed form
    tc = np.full(n, 0.2)
    cc = S.break_even_cost_bps(gross, tc, b)
    sd = gross.std(ddof=1)
    assert cc == pytest.approx((gross.mean() - S.sharpe(b) / math.sqrt(P) * sd) / (0.2 * 1e-4), rel=1e-8)
    # a worse than b before costs: nan; no turnover: inf; equal: 0
    assert math.isnan(S.break_even_cost_bps(b - 1e-3, turnover, b))
    assert S.break_even_cost_bps(gross, np.zeros(n), b) == math.inf
    assert S.break_even_cost_bps(b, turnover, b) == 0.0
    with pytest.raises(ValueError, match="negative"):
        S.break_even_cost_bps(gross, -turnover, b)
    with pytest.raises(ValueError, match="lengths differ"):
        S.break_even_cost_bps(gross, turnover[:-1], b)


# ---------------------------------------------------------------------------------------------- PBO
def test_pbo_about_one_half_on_noise_near_zero_with_a_dominant_configuration():
    rng = np.random.default_rng(20)
    noise = [S.pbo(rng.normal(0, 0.01, (400, 20)), n_splits=8) for _ in range(12)]
    assert 0.3 <= np.mean(noise) <= 0.7
    m = rng.normal(0, 0.01, (400, 20))
    m[:, 3] += 0.004  # one configuration with true SR ≈ 6 annual
    assert S.pbo(m, n_splits=8) <= 0.05
    assert S.pbo(pd.DataFrame(m), n_splits=8) == S.pbo(m, n_splits=8)
    # configurations whose in-sample gains are paid back out of sample (each demeaned over the
    # whole sample): the in-sample best is below the median out of sample: PBO near 1
    o = rng.normal(0, 0.01, (400, 20))
    o -= o.mean(axis=0)
    assert S.pbo(o, n_splits=8) >= 0.9
    assert 0 <= S.pbo(rng.normal(0, 0.01, (256, 5))) <= 1  # the default 16 splits (12870 of them)


def test_pbo_refuses_bad_input():
    m = np.zeros((100, 4)) + np.random.default_rng(0).normal(0, 1, (100, 4))
    for kw, msg in ((dict(n_splits=7), "even"), (dict(n_splits=64), "rows"), (dict(n_splits=0), "even")):
        with pytest.raises(ValueError, match=msg):
            S.pbo(m, **kw)
    with pytest.raises(ValueError, match="configuration"):
        S.pbo(m[:, :1], n_splits=4)
    with pytest.raises(ValueError, match="T×N"):
        S.pbo(m[:, 0], n_splits=4)


# ------------------------------------------------------------------------------------------- table
@pytest.fixture
def frame():
    rng = np.random.default_rng(21)
    idx = pd.bdate_range("2017-01-02", periods=600)
    ew = rng.normal(4e-4, 0.01, 600)
    return pd.DataFrame({"agent": 0.8 * ew + rng.normal(5e-4, 0.006, 600),
                         "momentum": 0.5 * ew + rng.normal(0, 0.008, 600),
                         "equal weight": ew}, index=idx)


def test_paired_table_columns_reference_row_and_attrs(frame):
    t = S.paired_table(frame, "equal weight", n_boot=300, seed=3, n_trials=10, sr_std=0.5)
    assert list(t.columns) == ["Sharpe", "Sharpe SE", "ΔSharpe", "ΔSharpe lo", "ΔSharpe hi", "JKM p", "IR", "IR t",
                               "corr", "PSR", "DSR"]
    assert list(t.index) == list(frame.columns)
    ref = t.loc["equal weight"]
    assert (ref["ΔSharpe"], ref["ΔSharpe lo"], ref["ΔSharpe hi"], ref["corr"]) == (0.0, 0.0, 0.0, pytest.approx(1.0))
    assert ref[["JKM p", "IR", "IR t"]].isna().all()
    assert t.drop(index="equal weight").notna().all().all()
    # each row is what the functions give, on the table's resamples (those of delta_sharpe's seed)
    a, e = frame["agent"].to_numpy(), frame["equal weight"].to_numpy()
    d = S.delta_sharpe(a, e, n_boot=300, seed=3)
    row = t.loc["agent"]
    assert row["Sharpe"] == S.sharpe(a) and row["Sharpe SE"] == S.sharpe_se(a)
    assert (row["ΔSharpe"], row["ΔSharpe lo"], row["ΔSharpe hi"]) == pytest.approx((d["delta"], d["lo"], d["hi"]))
    assert row["JKM p"] == pytest.approx(S.jobson_korkie_memmel(a, e)[1])
    assert (row["IR"], row["IR t"]) == pytest.approx(S.information_ratio(a, e)[:2])
    assert row["corr"] == pytest.approx(np.corrcoef(a, e)[0, 1])
    assert row["PSR"] == pytest.approx(S.probabilistic_sharpe(a))
    assert row["DSR"] == pytest.approx(S.deflated_sharpe(a, 10, 0.5)) and row["DSR"] <= row["PSR"]
    assert t.attrs == {"n_boot": 300, "block": S.default_block(600), "seed": 3, "level": 0.95, "n_trials": 10,
                       "sr_std": 0.5, "against": "equal weight", "n_days": 600, "periods": 252.0}
    assert S.paired_table(frame, "equal weight", n_boot=300, seed=3, n_trials=10, sr_std=0.5).equals(t)


def test_paired_table_dsr_rules(frame):
    no_std = S.paired_table(frame, "equal weight", n_boot=50, n_trials=10)
    assert no_std["DSR"].isna().all()
    one = S.paired_table(frame, "equal weight", n_boot=50, n_trials=1)
    np.testing.assert_allclose(one["DSR"], one["PSR"], rtol=1e-14)


def test_paired_table_refuses_nan_days_unknown_reference_and_bad_settings(frame):
    f = frame.copy()
    f.iloc[5:8, 1] = np.nan
    with pytest.raises(ValueError, match=r"column 'momentum' has no finite return on 3 of 600 days \(first 2017-01-09"):
        S.paired_table(f, "equal weight", n_boot=50)
    with pytest.raises(ValueError, match="'buy-and-hold' is not a column; columns: agent, momentum, equal weight"):
        S.paired_table(frame, "buy-and-hold", n_boot=50)
    with pytest.raises(ValueError, match="n_trials"):
        S.paired_table(frame, "equal weight", n_boot=50, n_trials=0)
    with pytest.raises(ValueError, match="sr_std"):
        S.paired_table(frame, "equal weight", n_boot=50, n_trials=5, sr_std=-1.0)
    with pytest.raises(ValueError, match="at least 3"):
        S.paired_table(frame.iloc[:2], "equal weight", n_boot=50)


def test_bootstrap_note(frame):
    t = S.paired_table(frame, "equal weight", n_boot=300, seed=3)
    note = S.bootstrap_note(t.attrs)
    assert note == ("ΔSharpe: 95% interval of a paired stationary bootstrap (300 resamples, mean block 8 days, "
                    "seed 3) of 600 daily returns against equal weight")
    assert "stationary bootstrap" in note and not note.endswith(".")
    assert S.bootstrap_note({"n_boot": 2000, "block": 13, "seed": 0, "level": 0.9, "against": "sp500",
                             "periods": 12}).startswith("ΔSharpe: 90% interval")
    with pytest.raises(ValueError, match="lack n_boot"):
        S.bootstrap_note({"block": 13, "seed": 0, "level": 0.95, "against": "x"})


def test_paired_table_with_a_constant_column_has_no_sharpe_for_it(frame):
    f = frame.assign(cash=0.0)
    t = S.paired_table(f, "equal weight", n_boot=50)
    assert t.loc["cash", ["Sharpe", "Sharpe SE", "ΔSharpe", "ΔSharpe lo", "ΔSharpe hi", "JKM p", "corr", "PSR",
                          "DSR"]].isna().all()
    assert t.loc["cash", "IR"] == pytest.approx(-S.sharpe(f["equal weight"]))
