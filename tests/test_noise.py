"""Market noise for the trading envs (`eqtrade.envs.wrappers.MarketNoise`): noisy observations of
the market's returns, in units of each asset's trailing volatility, with the book exact and the
accounting on the true returns; consistent across windows, causal, seeded, and symmetric."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from eqtrade.backtest.engine import rollout as backtest_rollout
from eqtrade.data import load_prices
from eqtrade.envs import make_env
from eqtrade.envs.factory import env_option_names
from eqtrade.envs.protocol import episode_state, restore_episode, symmetry_of
from eqtrade.envs.wrappers import MarketNoise, ObservationNoise

TICKERS = ["AAPL", "JNJ", "XOM", "KO"]
SPLIT = ("2019-01-01", "2020-12-31")
W = 16


@pytest.fixture(scope="module")
def small():
    return load_prices(TICKERS, start="2018-01-01", end="2020-12-31")


def env(prices, env_id="portfolio", **kw):
    extra = {"ticker": "AAPL"} if env_id == "trading" else {}
    return make_env(env_id, prices=prices, window=W, split=SPLIT, full_period=True, **extra, **kw)


def run(e, actions, seed=0):
    obs, info = e.reset(seed=seed)
    out = [(obs, None, info)]
    for a in actions:
        obs, r, term, trunc, info = e.step(a)
        out.append((obs, r, info))
        if term or trunc:
            break
    return out


def actions(env_id, n=300, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (n, 4)) if env_id == "portfolio" else rng.integers(0, 3, n)


def mirrored(prices: pd.DataFrame) -> pd.DataFrame:
    """Prices whose daily simple returns are the negated originals (same first price)."""
    r = prices.pct_change().fillna(0.0).to_numpy()
    return pd.DataFrame(prices.iloc[0].to_numpy() * np.cumprod(1 - r, axis=0), index=prices.index, columns=prices.columns)


@pytest.mark.parametrize("env_id,k", [("portfolio", 4), ("trading", 1)])
def test_the_book_and_the_accounting_are_exact(small, env_id, k):
    acts = actions(env_id)
    clean = run(env(small, env_id), acts)
    noisy = run(env(small, env_id, obs_noise=0.5, stale_ticks=0.1, bad_ticks=0.01, noise_seed=1), acts)
    assert len(clean) == len(noisy) > 100
    for (o1, r1, i1), (o2, r2, i2) in zip(clean, noisy):
        np.testing.assert_array_equal(o1[-k:], o2[-k:])  # the weights held: exact
        assert r1 == r2 and i1["value"] == i2["value"]  # rewards and value on the true returns
    assert not np.array_equal(clean[50][0][:-k], noisy[50][0][:-k])  # the market part is noisy
    # the old whole-observation noise perturbed the book: this test tells the two apart
    old = run(ObservationNoise(env(small, env_id), 0.05, seed=1), acts)
    assert not np.array_equal(clean[50][0][-k:], old[50][0][-k:])


def test_the_noise_is_sigma_trailing_volatilities(small):
    prices = load_prices(None, start="2000-01-01", end="2014-12-31")  # the bundled 20 stocks
    for sigma in (0.05, 0.5):
        e = make_env("portfolio", prices=prices, split="train", window=W, full_period=True, normalize=False,
                     obs_noise=sigma, noise_seed=2)
        e.reset(seed=0)
        m = e.unwrapped.market
        vol = m.trailing_vol(63)
        ok = m.valid_returns() & (vol > 0)
        z = (e.noisy_returns - m.returns)[ok] / vol[ok]
        assert z.size > 50_000 and abs(z.std() / sigma - 1) < 0.1 and abs(z.mean()) < 0.05 * sigma
        np.testing.assert_array_equal(e.noisy_returns[~ok], m.returns[~ok])  # no real return: nothing to perturb
        obs, _ = e.reset(seed=0)  # the observation is a window of the noisy table (raw returns here)
        np.testing.assert_array_equal(obs[:-20], e.unwrapped.return_window(e.noisy_returns))


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("env_id,k", [("portfolio", 4), ("trading", 1)])
def test_a_day_is_the_same_in_every_window(small, normalize, env_id, k):
    steps = run(env(small, env_id, normalize=normalize, obs_noise=0.3, stale_ticks=0.2, noise_seed=4),
                actions(env_id, 120))
    blocks = [o[:-k].reshape(W, k) for o, _, _ in steps]  # rows = days, oldest first
    for a, b in zip(blocks[:-1], blocks[1:]):
        np.testing.assert_array_equal(a[1:], b[:-1])  # the W - 1 days both windows show


def test_normalised_noise_is_scaled_by_the_noisy_volatility(small):
    e = env(small, obs_noise=0.3, noise_seed=5)
    obs, _ = e.reset(seed=0)
    m = e.unwrapped.market
    noisy_scaled = m.scaled_returns(63, 5.0, returns=e.noisy_returns)
    np.testing.assert_array_equal(obs[:-4], e.unwrapped.return_window(noisy_scaled))
    vol = m.trailing_vol(63)  # of the true returns: not what divides the noisy ones
    by_clean_vol = np.clip(np.where(vol > 1e-6, e.noisy_returns / np.where(vol > 1e-6, vol, 1), 0), -5, 5)
    assert not np.allclose(noisy_scaled, by_clean_vol)


@pytest.mark.parametrize("env_id", ["portfolio", "trading"])
def test_seeded_and_zero_noise_is_the_clean_observation(small, env_id):
    acts = actions(env_id, 60)
    a = run(env(small, env_id, obs_noise=0.2, stale_ticks=0.1, noise_seed=7), acts)
    b = run(env(small, env_id, obs_noise=0.2, stale_ticks=0.1, noise_seed=7), acts)
    c = run(env(small, env_id, obs_noise=0.2, stale_ticks=0.1, noise_seed=8), acts)
    for (o1, _, _), (o2, _, _) in zip(a, b):
        np.testing.assert_array_equal(o1, o2)
    assert not np.array_equal(a[10][0], c[10][0])
    clean = run(env(small, env_id), acts)
    assert type(env(small, env_id, obs_noise=0.0, noise_seed=7)).__name__ == "VolatilityNormalized"  # no wrapper
    for e in (MarketNoise(env(small, env_id), 0.0, seed=7), MarketNoise(env(small, env_id, normalize=False), 0.0)):
        raw = e.get_wrapper_attr("_norm") is None
        ref = run(env(small, env_id, normalize=False), acts) if raw else clean
        for (o1, _, _), (o2, _, _) in zip(ref, run(e, acts)):
            np.testing.assert_array_equal(o1, o2)
    # a new episode draws new noise from the same generator: episodes differ, runs repeat
    e = env(small, env_id, obs_noise=0.2, noise_seed=7)
    first, second = e.reset(seed=0)[0], e.reset(seed=0)[0]
    assert not np.array_equal(first, second)


def test_no_look_ahead(small):
    rng = np.random.default_rng(0)
    acts = actions("portfolio", 200)
    kw = dict(obs_noise=0.3, stale_ticks=0.2, bad_ticks=0.02, noise_seed=3)
    base = run(env(small, **kw), acts)
    cut = 120
    cut_date = base[cut][2]["date"]
    changed = small.copy()
    after = changed.index > cut_date
    changed.loc[after] *= rng.uniform(0.5, 2.0, size=(int(after.sum()), 4))  # rewrite the future
    again = run(env(changed, **kw), acts)
    for (o1, _, i1), (o2, _, i2) in zip(base[: cut + 1], again[: cut + 1]):
        assert i1["date"] == i2["date"] <= cut_date
        np.testing.assert_array_equal(o1, o2)
    assert not np.array_equal(base[cut + 1][0], again[cut + 1][0])


def test_stale_ticks(small):
    e = env(small, normalize=False, stale_ticks=1.0)
    obs, _ = e.reset(seed=0)
    assert not e.noisy_returns.any() and not obs[:-4].any()  # p = 1: every observed return is 0
    prices = load_prices(None, start="2000-01-01", end="2014-12-31")
    e = make_env("portfolio", prices=prices, split="train", window=W, full_period=True, normalize=False,
                 stale_ticks=0.3, noise_seed=1)
    e.reset(seed=0)
    m = e.unwrapped.market
    valid = m.valid_returns()
    zero = e.noisy_returns[valid] == 0
    assert abs(zero.mean() - 0.3) < 0.01
    # a fresh day carries every return since the last fresh one: the observed path catches up
    fresh = valid & (e.noisy_returns != 0)
    np.testing.assert_allclose(np.cumsum(e.noisy_returns, 0)[fresh], np.cumsum(m.returns, 0)[fresh], atol=1e-12)


def test_bad_ticks_are_five_volatility_outliers(small):
    prices = load_prices(None, start="2000-01-01", end="2014-12-31")
    e = make_env("portfolio", prices=prices, split="train", window=W, full_period=True, normalize=False,
                 bad_ticks=0.05, noise_seed=1)
    e.reset(seed=0)
    m = e.unwrapped.market
    vol = m.trailing_vol(63)
    hit = m.valid_returns() & (e.noisy_returns != m.returns)
    assert abs(hit.sum() / m.valid_returns().sum() - 0.05) < 0.005
    np.testing.assert_allclose(np.abs(e.noisy_returns[hit]), 5 * vol[hit])
    assert abs(np.mean(e.noisy_returns[hit] > 0) - 0.5) < 0.05


def test_the_reflection_passes_through(small):
    mirror = mirrored(small)
    kw = dict(normalize=False, obs_noise=0.3, noise_seed=9)
    e, me = env(small, **kw), env(mirror, **kw)
    assert symmetry_of(e) is not None and symmetry_of(e).name == symmetry_of(env(small)).name  # passed through
    e.reset(seed=0), me.reset(seed=0)
    R, mR = e.unwrapped.market.returns, me.unwrapped.market.returns
    noise, mnoise = e.noisy_returns - R, me.noisy_returns - mR
    # the same seed gives the same noise on mirrored data (the volatility is even in R) ...
    np.testing.assert_allclose(mnoise, noise, atol=1e-12)
    # ... and that noise is symmetric, so -R + ε and -(R + ε) have the same law
    vol = e.unwrapped.market.trailing_vol(63)
    z = (noise[vol > 0] / vol[vol > 0]) / 0.3
    assert abs(z.mean()) < 4 / np.sqrt(z.size) and abs(np.mean(z**3)) < 0.15
    np.testing.assert_allclose(np.quantile(z, [0.05, 0.25]), -np.quantile(z, [0.95, 0.75]), atol=0.1)
    # stale ticks commute with the reflection exactly (the catch-up is a sum, odd in R; the target
    # cost model keeps the accounting exact under it)
    sym = symmetry_of(env(small))
    acts = actions("portfolio", 200)
    st = dict(stale_ticks=0.3, noise_seed=2, cost_model="target")
    for (o1, r1, _), (o2, r2, _) in zip(run(env(small, **st), acts),
                                        run(env(mirror, **st), [sym.transform_action(a, 1) for a in acts])):
        np.testing.assert_allclose(sym.transform_obs(o1, 1), o2, atol=1e-9)
        assert r1 is None or abs(r1 - r2) < 1e-12


def test_a_checkpointed_episode_resumes_with_the_same_noisy_market(small):
    acts = actions("portfolio", 80)
    kw = dict(obs_noise=0.3, stale_ticks=0.1, noise_seed=6)
    e = env(small, **kw)
    e.reset(seed=0), e.reset(seed=0)  # the second episode's noise
    for a in acts[:40]:
        e.step(a)
    state = episode_state(e)
    assert [n for n, _ in state["wrappers"]] == ["MarketNoise"]
    fresh = env(small, **kw)
    assert restore_episode(fresh, state)
    for a in acts[40:]:
        np.testing.assert_array_equal(e.step(a)[0], fresh.step(a)[0])
    np.testing.assert_array_equal(e.reset(seed=0)[0], fresh.reset(seed=0)[0])  # and the next episode too


def test_backtest_rollout_noise_leaves_the_book_exact(small):
    seen: list[np.ndarray] = []

    def policy(obs):
        seen.append(obs)
        return np.full(4, 0.25)

    clean = backtest_rollout(policy, env(small))
    clean_obs = list(seen)
    seen.clear()
    noisy = backtest_rollout(policy, env(small), obs_noise=0.2, seed=1)
    pd.testing.assert_series_equal(clean.returns, noisy.returns)
    assert len(seen) == len(clean_obs) > 100
    assert all(np.array_equal(a[-4:], b[-4:]) for a, b in zip(clean_obs, seen))
    assert not np.array_equal(clean_obs[30][:-4], seen[30][:-4])


def test_options(small):
    assert {"stale_ticks", "bad_ticks", "obs_noise", "noise_seed"} <= env_option_names("portfolio")
    assert {"stale_ticks", "bad_ticks"} <= env_option_names("trading")
    with pytest.raises(ValueError, match=r"stale_ticks = 1.5 is out of range: it must be in \[0, 1\]"):
        env(small, stale_ticks=1.5)
    with pytest.raises(TypeError, match="bad_ticks = 'x' has the wrong type"):
        env(small, bad_ticks="x")
    with pytest.raises(ValueError, match="obs_noise = -0.1 is out of range"):
        env(small, obs_noise=-0.1)
    with pytest.raises(ValueError, match="stale_ticks = 0.1: market noise applies to the trading envs"):
        make_env("Pendulum-v1", stale_ticks=0.1)
    assert type(make_env("Pendulum-v1", obs_noise=0.1)).__name__ == "ObservationNoise"  # other envs: as before
    from eqtrade.envs.wrappers import VolatilityNormalized

    with pytest.raises(ValueError, match="wrap MarketNoise outside VolatilityNormalized"):
        VolatilityNormalized(MarketNoise(env(small, normalize=False), 0.1))
    with pytest.raises(TypeError, match="MarketNoise wraps the trading envs"):
        MarketNoise(make_env("Pendulum-v1"), 0.1)
