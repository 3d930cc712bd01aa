"""The asset axis: permutations of the assets (AssetAxis), the per-asset families with market context
and relaxed per-asset embeddings, and acting on another universe."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch
from gymnasium import spaces

from eqtrade.envs import PortfolioEnv
from eqtrade.nn import build_actor, build_critic, build_value
from eqtrade.nn.measure import permutation_errors
from eqtrade.symmetry import AssetAxis, portfolio_reflection

W, N = 6, 5
TICKERS = ["A", "B", "C", "D", "E"]


def _spaces(n=N):
    return spaces.Box(-np.inf, np.inf, (W * n + n,)), spaces.Box(-1, 1, (n,))


def _nets(family, context, assets, tickers=TICKERS, hidden=(8,)):
    n = len(tickers)
    o, a = _spaces(n)
    sym = portfolio_reflection(n, W)
    enc = {"kind": "per_asset", "window": W, "n_assets": n, "context": context, "assets": assets}
    kw = dict(hidden=hidden, encoder=enc, tickers=tickers)
    return sym, build_actor(family, o, a, sym, **kw), build_critic(family, o, a, sym, **kw), build_value(family, o, sym, **kw)


def _embeddings(module):
    return [p for name, p in module.named_parameters() if name.endswith("embedding.weight")]


def test_asset_axis_acts_like_reordering_the_price_columns():
    """The declared action of a permutation is what reordering the assets does to the env."""
    rng = np.random.default_rng(0)
    dates = pd.bdate_range("2010-01-01", periods=200)
    prices = pd.DataFrame(100 * np.exp(np.cumsum(rng.normal(0, 0.01, (200, N)), 0)), index=dates, columns=TICKERS)
    split = (str(dates[0].date()), str(dates[-1].date()))
    env = PortfolioEnv(prices, window=W, split=split, full_period=True)
    A = env.symmetry.assets
    assert A == AssetAxis(N, (W, 1))
    for _ in range(5):
        perm = rng.permutation(N)
        # asset i moves to position perm[i]: column perm[i] of the new panel is old column i
        reordered = prices.iloc[:, np.argsort(perm)]
        env2 = PortfolioEnv(reordered, window=W, split=split, full_period=True)
        o1, _ = env.reset()
        o2, _ = env2.reset()
        a = rng.uniform(-1, 1, N)
        np.testing.assert_allclose(A.permute_obs(o1, perm), o2)
        n1, r1, *_ = env.step(a)
        n2, r2, *_ = env2.step(A.permute_action(a, perm))
        np.testing.assert_allclose(A.permute_obs(n1, perm), n2, atol=1e-12)
        assert r1 == pytest.approx(r2, abs=1e-12)
    # a permutation composed with its inverse is the identity; a non-permutation is refused
    x = rng.normal(size=(3, W * N + N))
    perm = rng.permutation(N)
    np.testing.assert_array_equal(A.permute_obs(A.permute_obs(x, perm), np.argsort(perm)), x)
    with pytest.raises(ValueError, match="not a permutation"):
        A.permute_obs(x, [0, 0, 1, 2, 3])


@pytest.mark.parametrize("context", ["none", "mean"])
@pytest.mark.parametrize("assets", ["exact", "relaxed"])
@pytest.mark.parametrize("family", ["plain", "exact", "relaxed"])
def test_per_asset_families_are_equivariant_to_permutations_and_the_reflection(family, context, assets):
    """Shared heads (relaxed embeddings at their start) are permutation-equivariant, actor mean and
    log-std permuted, critic and value invariant; the reflection families also under G."""
    torch.manual_seed(0)
    sym, actor, critic, value = _nets(family, context, assets)
    x, act = torch.randn(32, W * N + N), torch.rand(32, N) * 2 - 1
    reflect = family != "plain"  # the plain head has no reflection constraint
    errs = {**permutation_errors(actor, sym, x, reflect=reflect),
            **{"q": permutation_errors(critic, sym, (x, act), reflect=reflect)["q"]},
            **{"v": permutation_errors(value, sym, x, reflect=reflect)["v"]}}
    assert max(errs.values()) < 1e-5, errs


@pytest.mark.parametrize("family", ["plain", "exact", "relaxed"])
def test_moved_embeddings_break_permutation_equivariance_and_the_regulariser_sees_it(family):
    torch.manual_seed(1)
    sym, actor, critic, value = _nets(family, "mean", "relaxed")
    x = torch.randn(64, W * N + N)
    assert float(actor.regularizer().detach()) == 0.0
    with torch.no_grad():
        for p in _embeddings(actor):
            p.add_(torch.randn_like(p))
    assert max(permutation_errors(actor, sym, x, reflect=False).values()) > 1e-3
    assert float(actor.regularizer().detach()) > 0.1
    # the embeddings are invariant under the reflection: it stays exact for the exact head
    if family == "exact":
        from eqtrade.nn.measure import equivariance_error

        assert equivariance_error(actor, sym, x) < 1e-5


def test_batched_twin_critics_regularise_the_embeddings():
    from eqtrade.agents.sac import TwinCritic

    _, _, _, v1 = _nets("relaxed", "mean", "relaxed")
    _, _, _, v2 = _nets("relaxed", "mean", "relaxed")
    twin = TwinCritic(v1, v2, batched=True)
    assert float(twin.regularizer().detach()) == 0.0
    with torch.no_grad():
        for k, p in twin.params.items():
            if k.endswith("embedding:weight"):
                p.add_(torch.randn_like(p))
    assert float(twin.regularizer().detach()) > 0.1


@pytest.mark.parametrize("family", ["plain", "exact", "relaxed"])
def test_relaxed_embeddings_fit_what_one_shared_head_cannot(family):
    """Fit check: identical-looking assets that must be traded in opposite directions
    (asset i's mean = c_i · tanh(2·mean of its window), c = +1, +1, -1, -1, +1) need per-asset
    weights: the relaxed embeddings learn it, the exactly shared head cannot."""
    torch.manual_seed(2)
    x = torch.randn(512, W * N + N)
    c = torch.tensor([1.0, 1.0, -1.0, -1.0, 1.0])
    target = c * torch.tanh(2 * x[:, : W * N].reshape(-1, W, N).mean(1))
    final = {}
    for assets in ("exact", "relaxed"):
        torch.manual_seed(2)
        _, actor, _, _ = _nets(family, "none", assets, hidden=(16,))
        opt = torch.optim.Adam(actor.parameters(), lr=1e-2)
        for _ in range(400):
            loss = ((actor(x)[0] - target) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        final[assets] = float(loss)
    var = float(target.var())
    assert final["relaxed"] < 0.15 * var, (family, final, var)
    assert final["exact"] > 0.5 * var, (family, final, var)


def test_embeddings_follow_their_tickers_into_another_universe():
    """Loading into a reordered universe maps each embedding to its ticker; an asset the network
    never saw gets the mean embedding (the shared weights)."""
    torch.manual_seed(3)
    sym, actor, _, _ = _nets("exact", "mean", "relaxed")
    with torch.no_grad():
        for p in _embeddings(actor):
            p.copy_(torch.randn_like(p))
    state = actor.state_dict()
    perm = np.array([3, 0, 4, 1, 2])
    reordered = [TICKERS[i] for i in np.argsort(perm)]  # asset i moves to position perm[i]
    _, actor2, _, _ = _nets("exact", "mean", "relaxed", tickers=reordered)
    actor2.load_state_dict(state)
    x = torch.randn(16, W * N + N)
    A = sym.assets
    with torch.no_grad():
        m, s = actor(x)
        m2, s2 = actor2(A.permute_obs(x, perm))
    torch.testing.assert_close(m2, A.permute_action(m, perm), atol=1e-5, rtol=1e-5)
    # another universe: two known tickers, one new (mean embedding), M = 3 != N
    _, actor3, _, _ = _nets("exact", "mean", "relaxed", tickers=["C", "NEW", "A"])
    actor3.load_state_dict(state)
    emb_old, emb_new = _embeddings(actor)[0], _embeddings(actor3)[0]
    torch.testing.assert_close(emb_new[0], emb_old[2])
    torch.testing.assert_close(emb_new[2], emb_old[0])
    torch.testing.assert_close(emb_new[1], emb_old.mean(0))
    assert actor3(torch.randn(4, W * 3 + 3))[0].shape == (4, 3)


def test_a_trained_relaxed_agent_acts_on_a_universe_of_another_size(tmp_path):
    from eqtrade.agents import SAC, Agent, EnvSpec, SACConfig

    rng = np.random.default_rng(4)
    dates = pd.bdate_range("2010-01-01", periods=300)
    cols = [f"T{i}" for i in range(8)]
    prices = pd.DataFrame(100 * np.exp(np.cumsum(rng.normal(0, 0.01, (300, 8)), 0)), index=dates, columns=cols)
    split = (str(dates[0].date()), str(dates[-1].date()))
    spec = EnvSpec("portfolio", {"prices": prices[cols[:6]], "window": W, "split": split})
    agent = SAC(spec.make(), SACConfig(family="relaxed", hidden=(8,), learning_starts=50, batch_size=32,
                                       encoder={"kind": "per_asset", "assets": "relaxed", "context": "mean"},
                                       actor_loss="exact", eval_every=0, checkpoint_every=0), spec)
    agent.learn(120)
    path = tmp_path / "agent.pt"
    agent.save(path, include_buffer=False)
    other = PortfolioEnv(prices[cols[3:]], window=W, split=split, full_period=True)  # 5 assets, 3 seen
    loaded = Agent.load_policy(path, other)
    obs, _ = other.reset()
    a = loaded.predict(obs, deterministic=True)
    assert a.shape == (5,) and np.isfinite(a).all()
    emb = dict(loaded.actor.head.embedding.named_parameters())["weight"]
    trained = dict(agent.actor.head.embedding.named_parameters())["weight"]
    torch.testing.assert_close(emb[0], trained[3])  # T3 kept its embedding
    torch.testing.assert_close(emb[3], trained.mean(0))  # T6 is new


@pytest.mark.parametrize("family", ["plain", "exact", "relaxed"])
def test_feature_major_forward_is_the_per_asset_rows_computation(family):
    """AssetwiseHead.forward (features [C, B·N], no per-asset input tensor) computes the same
    function and gradients as the reference `forward_rows` (per-asset rows through the head) for
    every option: context, relaxed embeddings moved off zero, horizons, levels, actions, the
    long-only cash action, one or two hidden layers, actor and value outputs."""
    import itertools

    from eqtrade.nn.asset import asset_head

    torch.manual_seed(0)
    n = 4
    for context, assets, outputs, with_action, hidden, levels, horizons, cash in itertools.product(
            ["none", "mean"], ["exact", "relaxed"], ["actor", "value"], [False, True], [[4], [6, 6]], [0, 2], [0, 3],
            [False, True]):
        if cash and family != "plain":
            continue
        head = asset_head(family, W, n, outputs, with_action, hidden, None, 2, context=context, assets=assets,
                          horizons=horizons, levels=levels, cash=cash)
        if head.embedding is not None:
            with torch.no_grad():
                head.embedding.weight.normal_()
        x = torch.randn(9, (W + horizons + levels + 1) * n + ((n + cash) if with_action else 0), requires_grad=True)
        got, ref = head(x), head.forward_rows(x)
        np.testing.assert_allclose(got.detach(), ref.detach(), rtol=1e-5, atol=1e-5)
        g = torch.randn_like(ref)
        gx, *gp = torch.autograd.grad((got * g).sum(), [x, *head.parameters()])
        rx, *rp = torch.autograd.grad((ref * g).sum(), [x, *head.parameters()])
        for a, b in zip([gx, *gp], [rx, *rp]):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("family", ["plain", "exact", "relaxed"])
def test_rows_inputs_action_and_held_book_apart_are_the_flat_computation(family):
    """What an update feeds the per-asset head (eqtrade.agents.sac: rows made once by `as_rows`,
    the action apart, a state value's next book apart) is the flat computation: the same values
    and parameter gradients as the flat observation (with the book written into its last row and
    the action concatenated), and the held book's gradient is the flat input's on that row, for
    every option (context, embeddings, horizons, levels, cash)."""
    import itertools

    from eqtrade.nn.asset import as_rows, asset_head

    torch.manual_seed(1)
    n, B = 4, 7
    for context, assets, outputs, with_action, levels, horizons, cash in itertools.product(
            ["none", "mean"], ["exact", "relaxed"], ["actor", "value"], [False, True], [0, 2], [0, 3], [False, True]):
        if cash and family != "plain":
            continue
        head = asset_head(family, W, n, outputs, with_action, [5], None, 2, context=context, assets=assets,
                          horizons=horizons, levels=levels, cash=cash)
        if head.embedding is not None:
            with torch.no_grad():
                head.embedding.weight.normal_()
        F = W + horizons + levels + 1
        obs = torch.randn(B, F * n)
        rows = as_rows(obs, F, n)
        assert rows.shape == (B, F, n) and torch.equal(rows.reshape(B, -1), obs)
        assert rows.transpose(0, 1).is_contiguous()  # feature-major memory: read without a copy
        act = torch.randn(B, n + cash) if with_action else None
        held = torch.randn(B, n, requires_grad=True)
        flat_obs = torch.cat([obs[:, : (F - 1) * n], held], dim=1)
        flat = head(flat_obs if act is None else torch.cat([flat_obs, act], dim=1))
        for kwargs in ({}, {"held": held}):
            x = rows if kwargs else as_rows(flat_obs.detach(), F, n)
            got = head(x, act, **kwargs) if with_action else head(x, **kwargs)
            np.testing.assert_allclose(got.detach(), flat.detach(), rtol=1e-5, atol=1e-5)
        g = torch.randn_like(flat)
        got = head(rows, act, held=held) if with_action else head(rows, held=held)
        gh, *gp = torch.autograd.grad((got * g).sum(), [held, *head.parameters()])
        rh, *rp = torch.autograd.grad((flat * g).sum(), [held, *head.parameters()])
        for a, b in zip([gh, *gp], [rh, *rp]):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match=r"rows \[B, 10, 4\], got \[7, 9, 4\]"):
        asset_head(family, W, n, "value", False, [5], None, 2, levels=3)(torch.randn(B, 9, n))


def test_a_per_asset_value_network_takes_the_held_book_and_others_refuse_it():
    """Value(obs, held): the per-asset network reads the book apart; a flat network cannot know
    where the book is and says so."""
    _, _, _, value = _nets("plain", "none", "exact")
    obs = torch.randn(3, W * N + N)
    held = torch.randn(3, N)
    np.testing.assert_allclose(value(obs, held=held).detach(), value(torch.cat([obs[:, : W * N], held], 1)).detach(),
                               rtol=1e-5, atol=1e-6)
    o, _ = _spaces()
    flat = build_value("plain", o, None, hidden=(8,))
    with pytest.raises(ValueError, match="only a per-asset value network"):
        flat(obs, held=held)


def _stacked(modules, lead_dim: int = 0) -> dict:
    """The modules' parameters and buffers by name, stacked on a new dimension (as a stack holds them)."""
    own = [{**dict(m.named_parameters()), **dict(m.named_buffers())} for m in modules]
    return {n: torch.stack([o[n] for o in own], dim=lead_dim).detach().requires_grad_(own[0][n].requires_grad)
            for n in own[0]}


@pytest.mark.parametrize("family", ["plain", "exact", "relaxed"])
def test_forward_on_stacked_tensors_is_each_runs_forward(family):
    """AssetwiseHead.forward_state, the runs of a stack (and the twin critics inside them) as plain
    batched tensor code instead of a vmap: each run's forward, its parameter and input gradients,
    and its regulariser, for every option (context, relaxed embeddings, actions, the cash action,
    a held book, one or two hidden layers, actor and value outputs), with weights stacked [K] and
    [K, 2] (twins sharing the inputs of their run)."""
    import itertools

    from eqtrade.nn.asset import as_rows, asset_head

    torch.manual_seed(2)
    n, B, K = 4, 5, 3
    for context, assets, outputs, with_action, hidden, cash, held in itertools.product(
            ["none", "mean"], ["exact", "relaxed"], ["actor", "value"], [False, True], [[4], [6, 6]],
            [False, True], [False, True]):
        if (cash and family != "plain") or (held and (outputs != "value" or with_action)):
            continue
        heads = [asset_head(family, W, n, outputs, with_action, hidden, None, 2, context=context, assets=assets,
                            cash=cash) for _ in range(K * 2)]
        for h in heads:
            with torch.no_grad():
                if h.embedding is not None:
                    h.embedding.weight.normal_()
                for name, p in h.named_parameters():
                    if name.endswith("relaxed_weights"):
                        p.add_(0.1 * torch.randn_like(p))  # off exact equivariance: the regulariser counts
        F = heads[0].rows
        x = as_rows(torch.randn(K, B, F * n), F, n)
        act = torch.randn(K, B, n + cash) if with_action else None
        book = torch.randn(K, B, n, requires_grad=True) if held else None
        for lead in ((K,), (K, 2)):
            runs = heads[:K] if len(lead) == 1 else heads
            t = _stacked(runs)
            t = {k: v.reshape(*lead, *v.shape[1:]).detach().requires_grad_(v.requires_grad) for k, v in t.items()}
            got = heads[0].forward_state(t, x, act, book, xlead=1)
            flat = [(k, j) for k in range(K) for j in range(1 if len(lead) == 1 else 2)]
            ref = torch.stack([runs[k * len(flat) // K + j](x[k], None if act is None else act[k],
                                                             None if book is None else book[k])
                               for k, j in flat]).reshape(got.shape)
            torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)
            g = torch.randn_like(ref)
            params = [k for k, v in t.items() if v.requires_grad]
            gs = torch.autograd.grad((got * g).sum(), [t[k] for k in params] + ([book] if held else []))
            rs = torch.autograd.grad((ref * g).sum(), [p for m in runs for _, p in m.named_parameters()]
                                     + ([book] if held else []))
            per = len(params)
            for i, k in enumerate(params):
                want = torch.stack([rs[r * per + i] for r in range(len(runs))]).reshape(t[k].shape)
                torch.testing.assert_close(gs[i], want, rtol=1e-4, atol=1e-5)
            if held:
                torch.testing.assert_close(gs[-1], rs[-1], rtol=1e-4, atol=1e-5)
            reg = heads[0].regularizer_state(t, params, lead)
            torch.testing.assert_close(reg, torch.stack([m.regularizer() for m in runs]).reshape(lead).detach(),
                                       rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("family,batched,hidden", [("plain", False, (8,)), ("exact", False, (8,)), ("exact", False, (6, 6)),
                                                  ("relaxed", True, (8,)), ("relaxed", False, (6, 6))])
def test_per_asset_twin_critics_in_one_call_are_the_two_critics(family, batched, hidden):
    """TwinCritic runs per-asset twins as one call on their weights stacked [2, ...] (the
    observations shared): the two critics' own values, gradients and regulariser, for Q(s, a),
    V(s) and V(s') with the book apart, with and without detached parameters."""
    from eqtrade.agents.sac import TwinCritic

    torch.manual_seed(3)
    pairs = [_nets(family, "mean", "relaxed", hidden=hidden)[2:] for _ in range(2)]  # (critic, value) twice
    for kind in (0, 1):
        q1, q2 = pairs[0][kind], pairs[1][kind]
        for q in (q1, q2):
            with torch.no_grad():
                for p in q.parameters():
                    p.add_(0.1 * torch.randn_like(p))
        ref_nets = [copy.deepcopy(q1), copy.deepcopy(q2)]
        twins = TwinCritic(q1, q2, batched=batched)
        assert twins.native_stack
        x = torch.randn(7, W * N + N)
        second = torch.randn(7, N, requires_grad=True)  # the action (Q) or the held book (V)
        for detach in (False, True):
            got = twins(x, second, detach_params=detach)
            ref = torch.stack([q(x, second) for q in ref_nets])
            torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-6)
            g = torch.randn_like(ref)
            (gs,) = torch.autograd.grad((got * g).sum(), [second], retain_graph=True)
            (rs,) = torch.autograd.grad((ref * g).sum(), [second], retain_graph=True)
            torch.testing.assert_close(gs, rs, rtol=1e-4, atol=1e-6)
            own = [p for p in twins.parameters()]
            if detach:
                assert not got.requires_grad or all(
                    gr is None for gr in torch.autograd.grad((got * g).sum(), own, allow_unused=True))
            else:
                names = [n for n, _ in twins.named_parameters()]
                gw = dict(zip(names, torch.autograd.grad((got * g).sum(), own)))
                for i, q in enumerate(ref_nets):
                    qn = [n for n, _ in q.named_parameters()]
                    rw = dict(zip(qn, torch.autograd.grad((ref * g).sum(), list(q.parameters()), retain_graph=True)))
                    for n in qn:
                        mine = gw["params." + n.replace(".", ":")][i] if batched else gw[f"qs.{i}.{n}"]
                        torch.testing.assert_close(mine, rw[n], rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(twins.regularizer(), ref_nets[0].regularizer() + ref_nets[1].regularizer())
