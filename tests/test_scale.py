"""The return-scale axis (issue 24): MarketFeatures' observations, how R -> c·R, R -> -R and asset
permutations act on them, the networks of every family on them, long-only per-asset networks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from eqtrade.envs.factory import EnvSpec, make_env
from eqtrade.envs.protocol import EnvInterface
from eqtrade.envs.wrappers import LEVELS, fitted_vol_ref, parse_horizons

N, W = 4, 8
HORIZONS = [5, 21, [63, 10]]


def _prices(R: np.ndarray, start="2000-01-03") -> pd.DataFrame:
    idx = pd.bdate_range(start, periods=len(R), name="date")
    return pd.DataFrame(100.0 * np.cumprod(1.0 + R, axis=0), index=idx, columns=[f"A{i}" for i in range(R.shape[1])])


def _returns(seed=0, T=600, n=N):
    rng = np.random.default_rng(seed)
    vol = 0.01 * np.exp(0.5 * np.sin(np.arange(T) / 40.0))[:, None]  # a moving volatility level
    R = 0.0003 + vol * rng.standard_normal((T, n))
    R[0] = 0.0
    return R


def _env(R, scale, split=("2000-06-01", "2002-04-30"), **kw):
    kw = {"window": W, "cost_model": "target", "full_period": True, "horizons": HORIZONS, **kw}
    return make_env("portfolio", prices=_prices(R), split=list(split), scale=scale, **kw)


def _walk(env, actions):
    obs = [env.reset(seed=0)[0]]
    for a in actions:
        o, *_ = env.step(a)
        obs.append(o)
    return np.array(obs)


@pytest.mark.parametrize("scale", ["exact", "relaxed", "plain"])
def test_the_observation_layout_and_the_declared_axes(scale):
    env = _env(_returns(), scale)
    iface = EnvInterface.of(env)
    V = len(LEVELS) if scale != "exact" else 0
    H = len(HORIZONS)
    assert env.observation_space.shape == ((W + H + V + 1) * N,)
    assert iface.assets.obs_rows == ((W, H, V, 1) if V else (W, H, 1))
    assert iface.assets.rows_of("levels") == V and iface.assets.rows_of("horizons") == H
    assert iface.scale.family == scale and len(iface.scale.shift) == V * N
    assert iface.symmetry.obs_dim == env.observation_space.shape[0]
    obs, _ = env.reset(seed=0)
    assert np.isfinite(obs).all() and np.all(obs[-N:] == 0)  # the book last, as the exact reward reads it


@pytest.mark.parametrize("scale", ["exact", "relaxed", "plain"])
@pytest.mark.parametrize("c", [0.5, 2.0, 3.7])
def test_scaling_every_return_by_c_acts_as_the_scale_axis_declares(scale, c):
    R = _returns(1)
    rng = np.random.default_rng(2)
    acts = rng.uniform(-1, 1, (30, N))
    base = _env(R, scale)
    ref = fitted_vol_ref(base)
    o1 = _walk(base, acts)
    scaled = _env(c * R, scale, **({"vol_ref": ref} if ref is not None else {}))  # the training split's constants
    o2 = _walk(scaled, acts)
    axis = EnvInterface.of(base).scale
    np.testing.assert_allclose(o2, axis.transform_obs(o1, c), rtol=1e-8, atol=1e-9)
    if scale == "exact":
        np.testing.assert_allclose(o2, o1, rtol=1e-8, atol=1e-9)
    else:  # the levels moved by log c (nothing else moved for relaxed)
        shift = list(axis.shift)
        np.testing.assert_allclose(o2[:, shift] - o1[:, shift], np.log(c), atol=1e-9)


@pytest.mark.parametrize("scale", ["exact", "relaxed", "plain"])
def test_the_reflection_and_asset_permutations_act_on_every_block(scale):
    R = _returns(3)
    rng = np.random.default_rng(4)
    acts = rng.uniform(-1, 1, (20, N))
    base = _env(R, scale)
    ref = fitted_vol_ref(base)
    extra = {"vol_ref": ref} if ref is not None else {}
    sym = EnvInterface.of(base).symmetry
    o = _walk(base, acts)
    mirrored = _walk(_env(-R, scale, **extra), -acts)  # the levels are the same for -R: the same vol_ref
    np.testing.assert_allclose(mirrored, sym.transform_obs(o, 1), rtol=1e-8, atol=1e-9)
    perm = rng.permutation(N)
    inv = np.argsort(perm)
    Rp = R[:, inv]  # asset i moves to place perm[i]
    permuted = _walk(_env(Rp, scale, **extra), acts[:, inv])
    np.testing.assert_allclose(permuted, sym.assets.permute_obs(o, perm), rtol=1e-8, atol=1e-9)


def test_features_are_causal():
    R = _returns(5)
    env = _env(R, "relaxed", vol_ref=[-4.6] * 4)
    later = R.copy()
    later[400:] *= 3.0  # change every return from day 400 on
    env2 = _env(later, "relaxed", vol_ref=[-4.6] * 4)
    f1, f2 = env.unwrapped.market, env2.unwrapped.market
    t1 = env.features(f1.returns)
    t2 = env2.features(f2.returns)
    np.testing.assert_array_equal(t1[:400], t2[:400])
    assert not np.allclose(t1[400:], t2[400:])


def test_vol_ref_is_fitted_on_the_training_split_and_recorded_by_train():
    from eqtrade.run import resolve_config

    cfg = resolve_config(scale="relaxed", horizons="default", steps=2000)
    ref = cfg["env"]["vol_ref"]
    assert len(ref) == len(LEVELS) and all(-8 < v < -2 for v in ref)  # log daily vols of ~1-3%
    train = EnvSpec("portfolio", cfg["env"]).make()
    assert np.allclose(fitted_vol_ref(train), ref, atol=1e-6)
    valid = EnvSpec("portfolio", cfg["env"], cfg["eval_env"]).make(evaluation=True)
    assert fitted_vol_ref(valid) == ref  # the valid env uses the training split's constants
    assert fitted_vol_ref(EnvSpec("portfolio", {**{k: v for k, v in cfg["env"].items() if k != "vol_ref"},
                                                "split": "valid"}).make()) != ref  # it would refit otherwise
    assert cfg["env"]["horizons"] == "default" and cfg["env"]["scale"] == "relaxed"


@pytest.mark.parametrize("bad, match", [
    ({"scale": "huge"}, "scale = 'huge' is not one of"),
    ({"scale": "relaxed", "vol_ref": [1, 2]}, "vol_ref"),
    ({"scale": "exact", "vol_ref": [1, 2, 3, 4]}, "vol_ref applies to scale"),
    ({"scale": "relaxed", "normalize": False}, "needs normalize = true"),
    ({"horizons": [0]}, "days >= 1"),
    ({"horizons": [[21, 21]]}, "skip < days"),
    ({"horizons": ["x"]}, "not a number of days"),
    ({"horizons": [5, 5]}, "twice"),
    ({"mode": "long_only", "action_map": "per_asset"}, "applies to long_short"),
    ({"action_map": "gross"}, "action_map = 'gross' is not one of"),
])
def test_bad_scale_options_are_one_line_errors(bad, match):
    with pytest.raises(ValueError, match=match):
        make_env("portfolio", prices=_prices(_returns()), window=W, **bad)


def test_scale_options_on_the_single_asset_env_are_refused():
    with pytest.raises(ValueError, match="portfolio env"):
        make_env("trading", prices=_prices(_returns()), window=W, scale="relaxed")


def test_parse_horizons_spellings():
    assert parse_horizons("default")[-1] == (252, 21)
    assert parse_horizons("5,21,252-21") == ((5, 0), (21, 0), (252, 21))
    assert parse_horizons([5, [63, 10]]) == ((5, 0), (63, 10))
    assert parse_horizons(None) == () == parse_horizons([]) == parse_horizons("none")


def test_market_noise_recomputes_the_features_of_the_noisy_market():
    from eqtrade.envs.factory import with_market_noise

    R = _returns(6)
    env = _env(R, "relaxed")
    noisy = with_market_noise(_env(R, "relaxed"), 0.5, seed=1)
    o, _ = env.reset(seed=0)
    on, _ = noisy.reset(seed=0)
    feats = slice(W * N, len(o) - N)
    assert not np.allclose(o[feats], on[feats]) and np.array_equal(o[-N:], on[-N:])
    feat = noisy.env  # the MarketFeatures inside
    day = feat.unwrapped.obs_day()
    np.testing.assert_allclose(on[feats], feat.features(noisy.noisy_returns)[day].reshape(-1))
    silent = with_market_noise(_env(R, "relaxed"), 0.0, seed=1, stale_ticks=0.0)
    np.testing.assert_array_equal(silent.reset(seed=0)[0], o)


# -- networks ----------------------------------------------------------------------------------
def _sac(family, scale, mode="long_short", encoder=None, actor_loss="exact", seed=0):
    from eqtrade.agents import SAC
    from eqtrade.agents.sac import SACConfig

    spec = EnvSpec("portfolio", {"prices": _prices(_returns(7)), "window": W, "split": ["2000-06-01", "2002-04-30"],
                                 "scale": scale, "horizons": HORIZONS, "mode": mode},
                   {"split": ["2000-06-01", "2002-04-30"], "full_period": True})
    cfg = SACConfig(family=family, hidden=(8,), encoder=encoder or {"kind": "per_asset"}, actor_loss=actor_loss,
                    learning_starts=50, eval_every=0, checkpoint_every=0, buffer_size=500, batch_size=32, seed=seed)
    return SAC(spec.make(), cfg, spec)


def _level_weights(actor) -> torch.Tensor:
    """What a relaxed-scale actor reads the volatility levels with: the per-asset head's weights on
    its level inputs (dense, every family), or a flat network's ScaleGain gains."""
    if actor.scale is not None:
        return actor.scale.scale_gain.detach()
    return actor.head.head.dense()[0][0][:, actor.head.level_columns].detach()


@torch.no_grad()
def _move_levels(actor, rng) -> float:
    """Move the level weights off zero; the squared norm they then have (a lower bound of the
    regulariser's rise)."""
    if actor.scale is not None:
        actor.scale.scale_gain.copy_(torch.tensor([0.5, -0.3, 0.2, 0.4]))
    else:
        head, cols = actor.head.head, actor.head.level_columns
        if hasattr(head, "net") and isinstance(head.net[0], torch.nn.Linear):  # plain
            head.net[0].weight[:, cols] = torch.as_tensor(rng.normal(0, 0.5, (head.net[0].weight.shape[0], len(cols))),
                                                          dtype=torch.float32)
        elif hasattr(head, "lift") and hasattr(head.lift, "weight"):  # exact (frobenius lift)
            head.lift.weight[cols, :] = torch.as_tensor(rng.normal(0, 0.5, (len(cols), head.lift.weight.shape[1])),
                                                        dtype=torch.float32)
        else:  # relaxed: the lift's kernels in every bank
            psi = head.net[0].psi
            psi[:, :, cols] = torch.as_tensor(rng.normal(0, 0.5, (psi.shape[0], psi.shape[1], len(cols))),
                                              dtype=torch.float32)
    return float(_level_weights(actor).pow(2).sum())


# every reflection family on the per-asset network (level weights in the head); the flat network
# for plain and relaxed (its exact escnn variant takes long to build; ScaleGain in front of it)
@pytest.mark.parametrize("family, encoder", [(f, {"kind": "per_asset"}) for f in ("plain", "exact", "relaxed")]
                         + [(f, {"kind": "flat"}) for f in ("plain", "relaxed")])
def test_relaxed_scale_networks_start_exactly_invariant_and_keep_their_reflection_family(family, encoder):
    from eqtrade.nn import equivariance_error, permutation_errors
    from eqtrade.nn.scale import scale_errors

    sac = _sac(family, "relaxed", encoder=encoder)
    axis = sac.interface.scale
    env = sac.env
    obs = torch.as_tensor(np.array([env.reset(seed=s)[0] for s in range(4)]) +
                          np.random.default_rng(0).normal(0, 0.3, (4, env.observation_space.shape[0])), dtype=torch.float32)
    assert float(_level_weights(sac.actor).abs().max()) == 0.0
    assert max(scale_errors(sac.actor, axis, obs).values()) == 0.0  # level weights at zero: exactly invariant
    base = float(sac.actor.regularizer())
    moved = _move_levels(sac.actor, np.random.default_rng(1))
    assert max(scale_errors(sac.actor, axis, obs).values()) > 1e-3  # the levels now matter
    assert float(sac.actor.regularizer()) - base == pytest.approx(moved, rel=1e-4)  # Σ of their squares
    if family == "exact":  # the levels are reflection-invariant inputs: still exactly equivariant
        assert equivariance_error(sac.actor, sac.symmetry, obs) < 1e-5
    if encoder["kind"] == "per_asset":
        assert sac.actor.scale is None  # read in the head, not through ScaleGain
        assert max(permutation_errors(sac.actor, sac.symmetry, obs, reflect=family == "exact").values()) < 1e-5


def test_the_level_weights_learn_from_zero_and_the_deviation_is_logged(tmp_path):
    sac = _sac("relaxed", "relaxed")
    sac.learn(150, out_dir=tmp_path, progress=False)
    assert float(_level_weights(sac.actor).detach().abs().sum()) > 0  # a gradient reaches them from zero
    assert sac.scale_error() > 0
    flat = _sac("relaxed", "relaxed", encoder={"kind": "flat"})
    flat.learn(80, progress=False)
    assert float(flat.actor.scale.scale_gain.detach().abs().sum()) > 0  # ScaleGain's gains, likewise
    plain = _sac("relaxed", "plain")
    plain.learn(80, progress=False)
    assert plain.actor.scale is None and plain.scale_error() > 0.01  # raw returns: far from invariant
    exact = _sac("relaxed", "exact")
    exact.learn(80, progress=False)
    assert exact.scale_error() is None  # invariant by construction: nothing to measure


@pytest.mark.parametrize("actor_loss", ["exact", "critic"])
@pytest.mark.parametrize("scale", ["exact", "relaxed"])
def test_long_only_per_asset_networks_permute_assets_and_keep_cash(actor_loss, scale):
    sac = _sac("plain", scale, mode="long_only", encoder={"kind": "per_asset", "assets": "exact"}, actor_loss=actor_loss)
    sac.learn(80, progress=False)
    env = sac.env
    o, _ = env.reset(seed=3)
    ax = sac.interface.assets
    perm = np.random.default_rng(1).permutation(N)
    x = torch.as_tensor(o[None], dtype=torch.float32)
    with torch.no_grad():
        m, s = sac.actor(x)
        mp, sp = sac.actor(ax.permute_obs(x, perm))
    assert m.shape == (1, N + 1)
    np.testing.assert_allclose(mp[0, :N].numpy(), ax.permute_action(m[:, :N], perm)[0].numpy(), atol=1e-6)
    assert abs(float(mp[0, N] - m[0, N])) < 1e-6 and abs(float(sp[0, N] - s[0, N])) < 1e-6  # cash: invariant
    a = sac.predict(o)
    assert a.shape == (N + 1,)


def test_long_only_refuses_reflection_families_with_a_reason():
    with pytest.raises(ValueError, match="long-only book does not have"):
        _sac("relaxed", "relaxed", mode="long_only")


def test_the_per_asset_action_map_holds_a_over_n_and_the_exact_reward_agrees():
    env = make_env("portfolio", prices=_prices(_returns(8)), window=W, split=["2000-06-01", "2002-04-30"],
                   action_map="per_asset")
    obs, _ = env.reset(seed=0)
    er = env.unwrapped.exact_reward
    for a in (np.full(N, 0.3), np.array([1.0, -1.0, 0.5, 0.0]), np.full(N, 1.0)):
        nxt, r, *_, info = env.step(a)
        np.testing.assert_allclose(info["target_weights"], a / N)  # gross sum|a|/N: 0.3 stays 0.3, not 1
        t = lambda x: torch.as_tensor(np.asarray(x, dtype=np.float64)[None])  # noqa: E731
        r2, _, _ = er(t(obs), t(a), t(er.last_extras()), t(nxt))
        assert abs(float(r2[0]) - r) < 1e-12
        obs = nxt


def test_fused_twin_critics_regularise_their_level_weights():
    """The fused (vmapped) twin critics' regulariser on a relaxed scale axis is the sum of each
    twin's own, level weights included (a per-asset head reads them; ScaleGain is not there)."""
    from eqtrade.agents.sac import TwinCritic
    from eqtrade.nn import build_value

    sac = _sac("relaxed", "relaxed")
    enc = {**sac.config.encoder, "window": W, "n_assets": N}
    twins = [build_value("relaxed", sac.observation_space, sac.symmetry, hidden=(8,), encoder=enc,
                         scale=sac.interface.scale) for _ in range(2)]
    rng = np.random.default_rng(3)
    moved = sum(_move_levels(v, rng) for v in twins)
    with torch.no_grad():
        ref = float(twins[0].regularizer() + twins[1].regularizer())
        fused = float(TwinCritic(*twins, batched=True).regularizer())
    assert moved > 0 and fused == pytest.approx(ref, rel=1e-5)


def test_the_run_label_shows_horizons_only_when_there_are_some():
    from eqtrade.backtest.report import family_label

    enc = {"kind": "per_asset"}
    assert family_label("relaxed", enc, "portfolio", {"horizons": "none"}) == "relaxed/exact/exact"
    assert family_label("relaxed", enc, "portfolio", {"horizons": []}) == "relaxed/exact/exact"
    assert family_label("relaxed", enc, "portfolio", {"horizons": "default", "scale": "relaxed"}) == "relaxed/exact/relaxed +h"


@pytest.mark.parametrize("context", ["none", "mean"])
def test_level_gain_multiplies_the_level_weights_and_keeps_the_fast_path_exact(context):
    """A head with level_gain g and level weights w is the head with gain 1 and weights g·w (the
    levels' weights move g times faster under Adam); forward = the reference forward_rows."""
    from eqtrade.nn.asset import asset_head

    torch.manual_seed(0)
    W, V, N, B = 4, 2, 3, 5
    kw = dict(outputs="actor", with_action=False, hidden=[6], channels=None, banks=2, context=context,
              levels=V, relaxed_levels=True)
    fast = asset_head("plain", W, N, level_gain=10.0, **kw)
    slow = asset_head("plain", W, N, **kw)
    slow.load_state_dict(fast.state_dict())
    W0 = fast.head.dense()[0][0]
    assert float(W0[:, fast.level_columns].abs().sum()) == 0.0  # exactly scale-invariant at the start
    with torch.no_grad():
        W0[:, fast.level_columns] = torch.randn(W0.shape[0], len(fast.level_columns))
        slow.head.dense()[0][0].copy_(W0)
        slow.head.dense()[0][0][:, fast.level_columns] *= 10.0
    x = torch.randn(B, (W + V + 1) * N)
    torch.testing.assert_close(fast(x), fast.forward_rows(x), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fast(x), slow(x), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="level_gain must be a positive number, got 0"):
        asset_head("plain", W, N, level_gain=0, **kw)


@pytest.mark.parametrize("family", ["plain", "exact", "relaxed"])
def test_a_stack_of_relaxed_scale_runs_trains_each_run_as_alone(family):
    """Per-asset runs with a relaxed scale axis stack: the stacked networks' own code (no vmap) for
    the forward, their regulariser (the level weights' Σ w², read from the dense layers) by the
    vmapped fallback; each run ends where the same seed trained alone ends."""
    from eqtrade.agents.stack import learn_stack

    steps = 50 + 60
    alone, stacked = ([_sac(family, "relaxed", seed=s) for s in (0, 1)] for _ in range(2))
    for a in alone:
        a.learn(steps, progress=False)
    # the networks stack by their own code; the regulariser (level columns) falls back to the vmap
    assert stacked[0].actor.native_stack and stacked[0].critic.native_stack and stacked[0].actor.head.level_columns
    learn_stack(stacked, steps, [[] for _ in stacked])
    for a, b in zip(alone, stacked):
        assert float(_level_weights(a.actor).abs().sum()) > 0  # the level weights moved off zero
        for m in ("actor", "critic"):
            for (n, p), q in zip(getattr(a, m).state_dict().items(), getattr(b, m).state_dict().values()):
                if isinstance(p, torch.Tensor) and p.is_floating_point():
                    assert float((p - q).norm()) <= 3e-5 * float(p.norm()) + 1e-12, f"{m} {n}"
