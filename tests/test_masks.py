"""Survivorship-free universes: assets that list late or delist early stay in the panel with a
tradable mask (align="mask"); the envs, exact rewards and baselines honour it, with no look-ahead."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from eqtrade.backtest.engine import baseline_weights, decision_days, weights_backtest
from eqtrade.envs import PortfolioEnv
from eqtrade.data.market import Market, resolve_prices

W = 5
LIST_C, DELIST_D = 120, 200  # C has prices from day 120 on; D has none after day 200


def panel(seed=0, days=320):
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2012-01-02", periods=days)
    p = pd.DataFrame(100 * np.exp(np.cumsum(rng.normal(0, 0.012, (days, 4)), 0)), index=dates, columns=list("ABCD"))
    p.iloc[:LIST_C, 2] = np.nan
    p.iloc[DELIST_D + 1 :, 3] = np.nan
    return p


SPLIT = ("2012-01-02", "2013-03-29")


def env(p=None, **kw):
    return PortfolioEnv(panel() if p is None else p, window=W, split=SPLIT, full_period=True, align="mask", **kw)


def test_inner_alignment_drops_history_and_says_how_to_keep_it():
    p = panel()
    with pytest.raises(ValueError, match="align='mask'"):
        resolve_prices(p)
    kept = resolve_prices(p, align="mask")
    assert len(kept) == len(p) and kept["C"].isna().sum() == LIST_C
    with pytest.raises(ValueError, match="align must be"):
        resolve_prices(p, align="outer")
    inside = p.copy()
    inside.iloc[150, 0] = np.nan  # a hole inside A's history is still an error
    with pytest.raises(Exception, match="NaN"):
        resolve_prices(inside, align="mask")


def test_no_weight_on_untradable_assets_and_the_mask_is_the_price_calendar():
    e = env()
    p = panel()
    rng = np.random.default_rng(1)
    obs, info = e.reset()
    done, seen = False, 0
    while not done:
        t = e._t
        has = p.iloc[t].notna().to_numpy()
        np.testing.assert_array_equal(info.get("tradable", np.ones(4, bool)), has)
        a = rng.uniform(-1, 1, 4)
        w = e.weights_from_action(a)
        assert (w[~has] == 0).all() and np.abs(w).sum() <= 1 + 1e-12
        obs, r, term, trunc, info = e.step(a)
        assert np.isfinite(obs).all() and np.isfinite(r)
        held = obs[-4:]
        if not term and "tradable" in info:
            assert (held[~info["tradable"]] == 0).all()  # a delisted position became cash
        seen += (~has).any()
        done = term or trunc
    assert seen > 100  # the episode crossed both the listing and the delisting


def test_no_look_ahead_from_a_later_listing():
    """Observations (and so decisions) before C lists are the same as in a universe without C:
    C's later listing does not drop or change earlier days."""
    p = panel()
    with_c = env(p)
    without_c = env(p.assign(C=np.nan).drop(columns="C"))
    o1, _ = with_c.reset()
    o2, _ = without_c.reset()
    keep = [0, 1, 3]
    for _ in range(LIST_C - with_c.market.first):
        R1 = o1[: W * 4].reshape(W, 4)
        R2 = o2[: W * 3].reshape(W, 3)
        np.testing.assert_array_equal(R1[:, keep], R2)
        assert (R1[:, 2] == 0).all()
        a = np.array([0.3, -0.2, 0.9, 0.1])
        o1, *_ = with_c.step(a)
        o2, *_ = without_c.step(a[keep])
    # and changing prices after day t changes nothing up to t
    q = p.copy()
    q.iloc[250:, :] *= 1.5
    q.iloc[250:, 2] = np.nan  # C delists in this other future
    e1, e2 = env(p), env(q)
    o1, _ = e1.reset()
    o2, _ = e2.reset()
    while e1._t < 249:
        np.testing.assert_array_equal(o1, o2)
        a = np.sin(np.arange(4) + e1._t)
        o1, *_ = e1.step(a)
        o2, *_ = e2.step(a)


def test_volatility_after_a_listing_ignores_the_placeholder_zeros():
    p = panel()
    m = Market.from_prices(resolve_prices(p, align="mask"), 1, (p.index[0], p.index[-1]))
    alone = Market.from_prices(p[["C"]].iloc[LIST_C:], 1, (p.index[LIST_C], p.index[-1]))
    X = m.scaled_returns(63)[LIST_C:, 2]
    np.testing.assert_allclose(X, alone.scaled_returns(63)[:, 0], atol=1e-12)


@pytest.mark.parametrize("mode", ["long_short", "long_only"])
@pytest.mark.parametrize("cost_model", ["target", "drift"])
@pytest.mark.parametrize("fill", ["close", "next_close"])
def test_exact_reward_equals_step_in_a_masked_universe(mode, cost_model, fill):
    e = env(mode=mode, cost_model=cost_model, cost_bps=25.0, fill=fill, borrow_bps=100.0)
    rng = np.random.default_rng(2)
    obs, _ = e.reset()
    rows = []
    done = False
    while not done:
        a = rng.uniform(-1, 1, e.action_space.shape)
        nxt, r, term, trunc, info = e.step(a)
        rows.append((obs, a, r, nxt, e.exact_reward.last_extras().copy()))
        obs, done = nxt, term or trunc
    k = 8 if fill == "close" else 12  # next_close: the book traded from too (the observation shows the target)
    assert e.exact_reward.extra_dim == k and rows[0][4].shape == (k,)
    o, a, r, n, x = (torch.as_tensor(np.array(c)) for c in zip(*rows))
    reward, next_obs, alive = e.exact_reward(o, a, x, n)
    np.testing.assert_allclose(reward.numpy(), r.numpy(), atol=1e-10)
    # the next weights held match, except on the delisting day (the env turns D into cash then)
    day = np.flatnonzero(np.array([info_t[7] for info_t in x.numpy()]) == 0)
    ok = np.ones(len(rows), bool)
    ok[max(0, DELIST_D - e.market.first - 1) : DELIST_D - e.market.first + 1] = False
    np.testing.assert_allclose(next_obs.numpy()[ok], n.numpy()[ok], atol=1e-10)
    assert len(day) > 0
    # the own-columns form (what a per-asset SAC update calls): the same numbers from the book alone
    own = e.exact_reward.own_dim
    assert own == e.n_assets
    r_own, book, alive_own = e.exact_reward.own(o[:, -own:], a, x)
    assert torch.equal(r_own, reward) and torch.equal(alive_own, alive)
    assert torch.equal(book, next_obs[:, -own:]) and torch.equal(next_obs[:, :-own], n[:, :-own])


def test_baselines_hold_only_what_trades():
    p = panel()
    days = decision_days(p, SPLIT, W)
    has = p.loc[days].notna().to_numpy()
    ew = baseline_weights("equal-weight", p, days).to_numpy()
    np.testing.assert_allclose(ew.sum(1), 1.0)
    assert (ew[~has] == 0).all()
    bh = baseline_weights("buy-and-hold", p, days)
    assert (bh.to_numpy()[~has] == 0).all() and (bh["C"] == 0).all()  # C listed after the first day
    assert (bh.to_numpy().sum(1) <= 1 + 1e-12).all() and bh.iloc[-1].sum() < 1  # D's value is cash
    for w in (ew, bh):
        bt = weights_backtest(p, pd.DataFrame(w, index=days, columns=p.columns), 10.0, "drift")
        assert np.isfinite(bt.returns).all()


def test_sac_trains_on_a_masked_universe():
    from eqtrade.agents import SAC, EnvSpec, SACConfig

    spec = EnvSpec("portfolio", {"prices": panel(), "window": W, "split": SPLIT, "align": "mask"})
    agent = SAC(spec.make(), SACConfig(family="plain", hidden=(8,), learning_starts=40, batch_size=16,
                                       encoder={"kind": "per_asset"}, actor_loss="exact",
                                       eval_every=0, checkpoint_every=0), spec)
    agent.learn(100)
    assert agent.buffer.extras.shape[1] == 8
    assert np.isfinite(agent.last_losses["actor_loss"])
