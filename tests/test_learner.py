"""The trading learner: normalised observations (causal, reflection-exact, return-scale
invariant), exact rewards of any action, per-asset shared networks (reflection and permutation
equivariance, a fit check), SAC's exact-reward mode with validation-selected checkpoints, and
the planted-market proof (one family here, slow like test_learning.py's for all three and bench/bench_planted.py)."""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest
import torch
from gymnasium import spaces

from eqtrade.agents import SAC, EnvSpec, SACConfig
from eqtrade.data import load_prices
from eqtrade.backtest.planted import rule_sharpe
from eqtrade.data.synthetic import momentum_weights, planted_market
from eqtrade.envs import RUIN_REWARD, PortfolioEnv, make_env
from eqtrade.envs.wrappers import VolatilityNormalized
from eqtrade.nn import build_actor, build_critic, build_value, equivariance_error
from eqtrade.symmetry import portfolio_reflection

TICKERS = ["AAPL", "JNJ", "XOM", "KO"]
SPLIT = ("2019-01-01", "2020-12-31")


@pytest.fixture(scope="module")
def small():
    return load_prices(TICKERS, start="2018-01-01", end="2020-12-31")


def walk(env, actions, seed=0):
    obs, info = env.reset(seed=seed)
    out = [obs]
    for a in actions:
        obs, r, term, trunc, info = env.step(a)
        out.append(obs)
        if term or trunc:
            break
    return np.array(out)


# -- observation normalisation (eqtrade.envs.wrappers.VolatilityNormalized, composed by the env factory) --
def normed_portfolio(**kw):
    """The portfolio env as the factory builds it (eqtrade train's default): returns normalised."""
    return make_env("portfolio", **kw)


def normed_trading(**kw):
    return make_env("trading", **kw)


def test_normalised_returns_are_causal_vol_scaled_and_clipped(small):
    env = normed_portfolio(prices=small, window=16, split=SPLIT, vol_window=20, clip=5.0)
    m = env.unwrapped.market
    R, X = m.returns, m.scaled_returns(20, 5.0)
    for s in (30, 200, len(R) - 1):
        sigma = np.sqrt(np.mean(R[s - 20 : s] ** 2, axis=0))  # the 20 returns strictly before s
        np.testing.assert_allclose(X[s], np.clip(R[s] / sigma, -5, 5), rtol=1e-10)
    assert np.abs(X).max() <= 5.0
    obs, info = env.reset(seed=0)
    t = m.date_list.index(info["date"])
    np.testing.assert_array_equal(obs[:-4], X[t - 15 : t + 1].reshape(-1))  # what the wrapped env shows
    assert 0.3 < np.abs(obs[:-4]).std() < 3  # unit scale, next to weights in [-1, 1]
    np.testing.assert_array_equal(obs[-4:], env.unwrapped.reset(seed=0)[0][-4:])  # the weights are not scaled


@pytest.mark.parametrize("seed", range(3))
def test_normalised_observations_have_no_look_ahead(small, seed):
    rng = np.random.default_rng(seed)
    acts = rng.uniform(-1, 1, size=(200, 4))
    base = walk(normed_portfolio(prices=small, window=16, split=SPLIT, full_period=True), acts)
    env = normed_portfolio(prices=small, window=16, split=SPLIT, full_period=True)
    cut = int(rng.integers(20, 150))
    cut_date = env.unwrapped.market.date_list[env.unwrapped.market.first + cut]
    changed = small.copy()
    after = changed.index > cut_date
    changed.loc[after] *= rng.uniform(0.5, 2.0, size=(int(after.sum()), 4))
    again = walk(normed_portfolio(prices=changed, window=16, split=SPLIT, full_period=True), acts)
    np.testing.assert_array_equal(base[: cut + 1], again[: cut + 1])
    assert not np.array_equal(base[cut + 1], again[cut + 1])


@pytest.mark.parametrize("seed", range(3))
def test_normalised_observations_keep_price_scale_invariance_and_the_exact_reflection(small, seed):
    rng = np.random.default_rng(seed)
    acts = rng.uniform(-1, 1, size=(80, 4))
    kw = dict(window=16, split=SPLIT, full_period=True)
    base = walk(normed_portfolio(prices=small, **kw), acts)
    scaled = walk(normed_portfolio(prices=small * rng.uniform(1e-3, 1e3, size=4), **kw), acts)
    np.testing.assert_allclose(base, scaled, rtol=0, atol=1e-12)
    # mirrored data: returns R -> -R (prices rebuilt from negated returns), actions negated; exact
    # under the target cost model (the drift model's gap is measured in tests/test_envs.py)
    R = small.pct_change().fillna(0.0)
    mirrored = (1 - R).cumprod() * small.iloc[0]
    t = dict(kw, cost_model="target")
    m = walk(normed_portfolio(prices=mirrored, **t), -acts)
    np.testing.assert_allclose(m, -walk(normed_portfolio(prices=small, **t), acts), rtol=0, atol=1e-9)


def test_return_scale_is_an_exact_symmetry_once_the_vol_window_is_full(small):
    R = small.pct_change().fillna(0.0)
    calm = (1 + 0.3 * R).cumprod() * small.iloc[0]  # every return x 0.3: a calmer regime
    kw = dict(window=16, split=SPLIT, full_period=True, vol_window=40)
    acts = np.random.default_rng(0).uniform(-1, 1, size=(100, 4))
    a, b = walk(normed_portfolio(prices=small, **kw), acts), walk(normed_portfolio(prices=calm, **kw), acts)
    n = 4 * 16
    np.testing.assert_allclose(a[:, :n], b[:, :n], rtol=0, atol=1e-9)
    raw = dict(kw, normalize=False)
    ra, rb = walk(normed_portfolio(prices=small, **raw), acts), walk(normed_portfolio(prices=calm, **raw), acts)
    assert np.abs(ra[:, :n] - rb[:, :n]).max() > 1e-3  # the raw returns do change


def test_trading_env_normalises_too(small):
    env = normed_trading(prices=small, ticker="AAPL", window=16, split=SPLIT)
    obs, _ = env.reset(seed=0)
    assert 0.3 < np.abs(obs[:-1]).std() < 3
    raw = normed_trading(prices=small, ticker="AAPL", window=16, split=SPLIT, normalize=False)
    assert isinstance(env, VolatilityNormalized) and not isinstance(raw, VolatilityNormalized)
    assert np.abs(raw.reset(seed=0)[0][:-1]).std() < 0.1


def test_a_split_holds_no_data_after_its_end(small):
    env = PortfolioEnv(prices=small, window=16, split=("2019-01-01", "2019-12-31"))
    assert env.market.dates[-1] <= pd.Timestamp("2019-12-31")


def test_ruin_is_the_worst_reward(small):
    from eqtrade.envs import RUIN_REWARD

    p = small.copy()
    day = p.index[p.index.get_indexer([pd.Timestamp("2019-06-03")])[0]]
    i = p.index.get_loc(day)
    # AAPL returns +99.995% that day: a full short keeps a growth factor of 5e-5 (> 0, < 1e-4)
    p.loc[day:, "AAPL"] *= 1.99995 * p["AAPL"].iloc[i - 1] / p["AAPL"].iloc[i]
    env = PortfolioEnv(prices=p, window=16, split=SPLIT, full_period=True, cost_bps=0)
    env.reset()
    while env.market.date_list[env._t + 1] != day:
        env.step(np.zeros(4))
    _, r, term, _, _ = env.step(np.array([-1.0, 0, 0, 0]))
    assert term and r == RUIN_REWARD


# -- exact reward of any action --------------------------------------------------------------------
@pytest.mark.parametrize("cost_model,penalty,fill,borrow,kappa", [
    ("target", 0.0, "close", 0.0, 0.0), ("drift", 0.0, "close", 0.0, 0.0), ("drift", 40.0, "close", 0.0, 0.0),
    ("drift", 0.0, "close", 300.0, 0.0), ("drift", 0.0, "next_close", 300.0, 0.0),
    ("target", 40.0, "next_close", 0.0, 0.0), ("drift", 40.0, "close", 0.0, 5.0)])
@pytest.mark.parametrize("mode", ["long_short", "long_only"])
def test_exact_reward_equals_the_env_step_for_any_action(small, cost_model, penalty, fill, borrow, kappa, mode):
    env = PortfolioEnv(prices=small, window=16, split=SPLIT, cost_model=cost_model, mode=mode, cost_bps=25,
                       turnover_penalty_bps=penalty, fill=fill, borrow_bps=borrow, risk_aversion=kappa)
    k = env.action_space.shape[0]
    rng = np.random.default_rng(1)
    obs, _ = env.reset(seed=3)
    rows = []
    for _ in range(40):
        a = rng.uniform(-1, 1, size=k)
        nxt, r, term, trunc, info = env.step(a)
        rows.append((obs, a, r, nxt, env.exact_reward.last_extras().copy()))  # the ExactReward protocol
        obs = nxt
    o, a, r, n, x = (torch.tensor(np.array(z), dtype=torch.float64) for z in zip(*rows))
    rr, nn_, alive = env.exact_reward(o, a, x, n)
    assert bool((alive == 1).all())
    np.testing.assert_allclose(rr.numpy(), r.numpy(), atol=1e-12)
    np.testing.assert_allclose(nn_.numpy(), n.numpy(), atol=1e-12)
    # other actions: the same function, differentiable, and different rewards
    other = torch.tensor(rng.uniform(-1, 1, size=a.shape), requires_grad=True)
    r2, _, _ = env.exact_reward(o, other, x, n)
    r2.sum().backward()
    assert other.grad is not None and torch.isfinite(other.grad).all() and not torch.allclose(r2, rr)


def test_the_turnover_penalty_is_a_training_reward_term_on_the_drift_accounting(small):
    """reward = log(growth) − p·turnover with the same (drift) turnover as the cost; the book's
    value is unchanged by it, and every evaluation env drops it."""
    from eqtrade.envs import EnvSpec

    acts = np.random.default_rng(0).uniform(-1, 1, size=(30, 4))
    plain, pen = (PortfolioEnv(prices=small, window=16, split=SPLIT, cost_bps=10, full_period=True,
                               turnover_penalty_bps=p) for p in (0.0, 40.0))
    for env in (plain, pen):
        env.reset()
    for a in acts:
        _, r0, _, _, i0 = plain.step(a)
        _, r1, _, _, i1 = pen.step(a)
        assert i0["value"] == i1["value"] and i0["turnover"] == i1["turnover"] > 0
        assert r1 == pytest.approx(r0 - 40e-4 * i0["turnover"], abs=1e-15)
    spec = EnvSpec("portfolio", {"prices": small, "window": 16, "split": SPLIT, "turnover_penalty_bps": 40.0},
                   {"split": SPLIT})
    assert spec.make().unwrapped.penalty == 40e-4 and spec.make(evaluation=True).unwrapped.penalty == 0.0
    assert "turnover_penalty_bps" not in spec.evaluation_kwargs()
    assert PortfolioEnv(prices=small, window=16, split=SPLIT).cost_model == "drift"  # the broker's, by default
    with pytest.raises(ValueError, match="turnover_penalty_bps"):
        PortfolioEnv(prices=small, window=16, split=SPLIT, turnover_penalty_bps=-1.0)


def test_risk_aversion_is_a_training_reward_term_on_the_step_return(small):
    """reward = log(growth) − p·turnover − (κ/2)(growth − 1)²; the book is unchanged, evaluation
    envs drop it, and a bad value is a one-line error naming it."""
    from eqtrade.envs import EnvSpec

    acts = np.random.default_rng(1).uniform(-1, 1, size=(30, 4))
    base, risk = (PortfolioEnv(prices=small, window=16, split=SPLIT, cost_bps=10, full_period=True,
                               turnover_penalty_bps=40.0, risk_aversion=k) for k in (0.0, 8.0))
    for env in (base, risk):
        env.reset()
    moved = 0
    for a in acts:
        _, r0, _, _, i0 = base.step(a)
        _, r1, _, _, i1 = risk.step(a)
        assert i0["value"] == i1["value"] and i0["turnover"] == i1["turnover"]
        g = 1.0 + float(i1["target_weights"] @ risk._R[risk._t]) - i1["cost"]
        assert r1 == pytest.approx(r0 - 4.0 * (g - 1.0) ** 2, abs=1e-15)
        moved += r1 < r0
    assert moved == len(acts)  # every step with a non-zero return pays the risk term
    spec = EnvSpec("portfolio", {"prices": small, "window": 16, "split": SPLIT, "risk_aversion": 8.0}, {"split": SPLIT})
    assert spec.make().unwrapped.risk_aversion == 8.0 and spec.make(evaluation=True).unwrapped.risk_aversion == 0.0
    for bad in (-1.0, float("nan")):
        with pytest.raises(ValueError, match="risk_aversion"):
            PortfolioEnv(prices=small, window=16, split=SPLIT, risk_aversion=bad)


# -- per-asset shared networks ----------------------------------------------------------------------
W, N = 8, 6


def spaces_():
    return spaces.Box(-np.inf, np.inf, (W * N + N,)), spaces.Box(-1, 1, (N,))


def permute(x, perm, with_action=False):
    B = x.shape[0]
    parts = [x[:, : W * N].reshape(B, W, N)[:, :, perm].reshape(B, -1), x[:, W * N : W * N + N][:, perm]]
    if with_action:
        parts.append(x[:, W * N + N :][:, perm])
    return torch.cat(parts, 1)


def nets(family, hidden=(8,)):
    o, a = spaces_()
    sym = portfolio_reflection(N, W)
    enc = {"kind": "per_asset", "window": W, "n_assets": N}
    return (sym, build_actor(family, o, a, sym, hidden=hidden, encoder=enc),
            build_critic(family, o, a, sym, hidden=hidden, encoder=enc), build_value(family, o, sym, hidden=hidden, encoder=enc))


@pytest.mark.parametrize("family", ["plain", "exact", "relaxed"])
def test_per_asset_networks_are_permutation_equivariant_and_size_independent(family):
    torch.manual_seed(0)
    sym, actor, critic, value = nets(family)
    x, act = torch.randn(32, W * N + N), torch.rand(32, N) * 2 - 1
    for _ in range(5):
        perm = torch.randperm(N)
        m, s = actor(x)
        mp, sp = actor(permute(x, perm))
        torch.testing.assert_close(mp, m[:, perm], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(sp, s[:, perm], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(critic(permute(x, perm), act[:, perm]), critic(x, act), atol=1e-4, rtol=1e-5)
        torch.testing.assert_close(value(permute(x, perm)), value(x), atol=1e-4, rtol=1e-5)
    # the same head acts on any number of assets: its parameters do not depend on N
    o2, a2 = spaces.Box(-np.inf, np.inf, (W * 30 + 30,)), spaces.Box(-1, 1, (30,))
    big = build_actor(family, o2, a2, portfolio_reflection(30, W), hidden=(8,),
                      encoder={"kind": "per_asset", "window": W, "n_assets": 30})
    assert sum(p.numel() for p in big.parameters()) == sum(p.numel() for p in actor.parameters())


@pytest.mark.parametrize("family", ["exact", "relaxed"])
def test_per_asset_networks_are_reflection_equivariant_and_relaxed_breaks_when_moved(family):
    torch.manual_seed(1)
    sym, actor, critic, value = nets(family)
    x, act = torch.randn(64, W * N + N), torch.rand(64, N) * 2 - 1
    assert equivariance_error(actor, sym, x) < 1e-5
    assert equivariance_error(critic, sym, (x, act)) < 1e-5
    assert equivariance_error(value, sym, x) < 1e-5
    if family == "relaxed":
        with torch.no_grad():
            for name, p in actor.named_parameters():
                if name.endswith("relaxed_weights"):
                    p.add_(0.3 * torch.randn_like(p))
        assert equivariance_error(actor, sym, x) > 1e-3


@pytest.mark.parametrize("family", ["plain", "exact", "relaxed"])
def test_per_asset_actor_can_fit_an_equivariant_target(family):
    """Fit check (not only symmetry): each asset's mean should be tanh(2·mean of its window)."""
    torch.manual_seed(2)
    _, actor, _, _ = nets(family, hidden=(16,))
    opt = torch.optim.Adam(actor.parameters(), lr=1e-2)
    x = torch.randn(512, W * N + N)
    target = torch.tanh(2 * x[:, : W * N].reshape(-1, W, N).mean(1))
    first = None
    for _ in range(300):
        loss = ((actor(x)[0] - target) ** 2).mean()
        first = first if first is not None else float(loss.detach())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss) < 0.1 * first, (family, first, float(loss))


# -- SAC on the planted market -----------------------------------------------------------------------
PLANTED_AGENT = dict(encoder={"kind": "per_asset"}, hidden=(4,), actor_loss="exact", reward_scale=100.0,
                     alpha_init="auto", gamma=0.9, learning_starts=1000, eval_every=1000, eval_episodes=1,
                     checkpoint_every=0, buffer_size=20_000)


@pytest.fixture(scope="module")
def planted():
    return planted_market(10, seed=0)


def planted_spec(prices):
    return EnvSpec("portfolio", dict(prices=prices, window=32, split="train", episode_length=252),
                   dict(split="valid", full_period=True))


def test_planted_market_has_a_known_out_of_sample_answer(planted):
    rule = rule_sharpe(planted, "test")
    assert rule["sharpe"] > 1.0 and rule["turnover"] < 0.3
    w = momentum_weights(planted)
    assert np.allclose(w.abs().sum(1).iloc[40:], 1.0)


def policy_test_metrics(agent, prices, split="test"):
    from eqtrade.backtest.engine import rollout
    from eqtrade.backtest.metrics import metrics

    env = EnvSpec("portfolio", dict(prices=prices, window=32, split=split, full_period=True)).make()
    bt = rollout(lambda o: agent.predict(o), env)
    return metrics(bt.returns)["Sharpe"], bt.turnover


def test_random_actions_fail_the_planted_criterion(planted):
    rule = rule_sharpe(planted, "test")["sharpe"]

    class Random:
        rng = np.random.default_rng(0)

        def predict(self, obs):
            return self.rng.uniform(-1, 1, size=10)

    sharpe, turnover = policy_test_metrics(Random(), planted)
    assert not (sharpe >= 0.5 * rule and turnover < 0.3), (sharpe, turnover)


@pytest.mark.slow
def test_sac_exact_family_learns_the_planted_signal(planted, tmp_path):
    """The proof in-process: exact-family SAC, 6 000 steps, checkpoint chosen on the valid split,
    then the test split read once: Sharpe >= half the rule's, turnover < 0.3. About 125 s on 2 cores:
    slow (with test_learning.py's proof for every family through the CLI). Guarded in the default
    suite by test_protocol.py::test_sac_learns_with_full_information_rewards_on_a_toy_env (the exact
    family with the exact-reward actor loss learns a planted signal), test_per_asset_actor_can_fit_an_equivariant_target,
    test_backtest.py::test_backtest_uses_the_validation_selected_checkpoint_and_says_so (best.pt on
    valid), test_auto_alpha_makes_the_entropy_bonus_a_small_fraction_of_the_reward and
    test_guards.py::test_progress_in_a_log_file_is_one_line_per_evaluation (the evaluation's trading columns)."""
    torch.set_num_threads(1)
    spec = planted_spec(planted)
    agent = SAC(spec.make(), SACConfig(family="exact", seed=0, **PLANTED_AGENT), spec)
    from eqtrade.agents import Agent
    from eqtrade.backtest.evaluation import TradingEvalCallback

    agent.learn(6000, out_dir=tmp_path, progress=False, evaluation=TradingEvalCallback(spec))

    best = Agent.load(tmp_path / "best.pt", env=spec.make())
    sharpe, turnover = policy_test_metrics(best, planted)
    rule = rule_sharpe(planted, "test")["sharpe"]
    assert sharpe >= 0.5 * rule and turnover < 0.3, (sharpe, turnover, rule)
    evals = [m for m in agent.metrics if "eval_return" in m]
    assert evals[-1]["eval_sharpe"] > evals[0]["eval_sharpe"]  # a rising validation curve
    assert all(k in evals[-1] for k in ("train_sharpe", "eval_turnover", "best_eval_return"))
    assert "reward_entropy_ratio" in agent.last_losses and agent.last_losses["reward_entropy_ratio"] > 5


def test_auto_alpha_makes_the_entropy_bonus_a_small_fraction_of_the_reward(planted):
    spec = planted_spec(planted)
    cfg = SACConfig(family="plain", seed=0, **dict(PLANTED_AGENT, learning_starts=300))
    agent = SAC(spec.make(), cfg, spec)
    agent.learn(301, progress=False)
    ratio = agent.last_losses["reward_entropy_ratio"]
    assert 5 < ratio < 20, ratio  # entropy_frac = 0.1 -> ratio about 10 at the start


def test_exact_reward_of_a_ruinous_action_is_ruin(small):
    from eqtrade.envs import RUIN_REWARD

    env = PortfolioEnv(prices=small, window=16, split=SPLIT, cost_model="drift")
    obs, _ = env.reset(seed=0)
    nxt, *_ = env.step(np.zeros(4))
    o, n = (torch.tensor(z[None]) for z in (obs, nxt))
    x = torch.tensor([[2.0, 0.0, 0.0, 0.0]])  # AAPL +200% tomorrow: a full short is ruined
    r, nn_, alive = env.exact_reward(o, torch.tensor([[-1.0, 0, 0, 0]], dtype=torch.float64), x, n)
    assert float(alive) == 0.0 and float(r) == pytest.approx(RUIN_REWARD) and bool((nn_[0, -4:] == 0).all())
    r, _, alive = env.exact_reward(o, torch.tensor([[1.0, 0, 0, 0]], dtype=torch.float64), x, n)
    assert float(alive) == 1.0 and float(r) > 0


@pytest.mark.parametrize("fill,borrow", [("close", 0.0), ("close", 300.0), ("next_close", 300.0)])
def test_trading_exact_reward_equals_the_env_step_for_every_action(small, fill, borrow):
    """The single-asset env's ExactReward (DQN targets='exact'), through the factory's wrappers
    (normalised returns): the taken action's reward and next observation are the step's, and the
    other actions differ only in the position (and the reward)."""
    from eqtrade.envs import exact_reward_of

    env = make_env("trading", prices=small, window=8, split=SPLIT, ticker="KO", cost_bps=25, fill=fill,
                   borrow_bps=borrow)
    er = exact_reward_of(env)
    assert er is not None and er.extra_dim == 1
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=1)
    rows = []
    for _ in range(60):
        a = int(rng.integers(3))
        nxt, r, term, trunc, _ = env.step(a)
        rows.append((obs, a, r, nxt, er.last_extras().copy()))
        obs = nxt
    o, a, r, n, x = (torch.tensor(np.array(z), dtype=torch.float64) for z in zip(*rows))
    rr, nn_, alive = er(o, a, x, n)
    assert bool((alive == 1).all())
    np.testing.assert_allclose(rr.numpy(), r.numpy(), atol=1e-12)
    np.testing.assert_allclose(nn_.numpy(), n.numpy(), atol=1e-12)
    for other in range(3):
        r2, n2, _ = er(o, torch.full_like(a, other), x, n)
        np.testing.assert_array_equal(n2[:, :-1].numpy(), n[:, :-1].numpy())
        assert bool((n2[:, -1] == other - 1).all())
        same = a == other
        np.testing.assert_allclose(r2[same].numpy(), r[same].numpy(), atol=1e-12)
        assert not torch.allclose(r2[~same], r[~same])
    # ruin: a short into a +200% day
    r3, n3, alive3 = er(o[:1], torch.tensor([0]), torch.tensor([[2.0]], dtype=torch.float64), n[:1])
    assert float(alive3) == 0.0 and float(r3) == pytest.approx(RUIN_REWARD) and float(n3[0, -1]) == 0.0


def test_dqn_exact_targets_need_an_exact_reward_and_one_step_transitions(small):
    from eqtrade.agents import DQN, DQNConfig

    spec = EnvSpec("CartPole-v1")
    with pytest.raises(ValueError, match="exact_reward"):
        DQN(spec.make(), DQNConfig(targets="exact"), spec)
    spec = EnvSpec("trading", {"prices": small, "window": 8, "split": SPLIT, "ticker": "KO"})
    with pytest.raises(ValueError, match="n_step must be 1, got 3"):
        DQN(spec.make(), DQNConfig(targets="exact", n_step=3), spec)
    with pytest.raises(ValueError, match="targets must be 'sampled' or 'exact', got 'all'"):
        DQN(spec.make(), DQNConfig(targets="all"), spec)


def test_dqn_exact_targets_learn_the_value_of_actions_never_taken(small):
    """A market whose price never moves, a 300 bps cost and γ = 0: the reward of action a from
    position p is exactly 100·log(1 − 0.03|a − p|) (scaled by 100). A greedy DQN (ε = 0) only visits what its
    argmax picks; with exact targets all three Q-values of every visited state learn their
    reward, with sampled targets (the control) the actions it never took keep their initial values."""
    from eqtrade.agents import DQN, DQNConfig

    flat = small.copy()
    flat.loc[:, :] = 100.0
    spec = EnvSpec("trading", {"prices": flat, "window": 8, "split": SPLIT, "ticker": "KO", "cost_bps": 300,
                               "normalize": False, "episode_length": 4})  # short episodes: many flat starts
    errors = {}
    for targets in ("exact", "sampled"):
        agent = DQN(spec.make(), DQNConfig(targets=targets, gamma=0.0, reward_scale=100.0, hidden=(16,), lr=3e-3,
                                           batch_size=64, learning_starts=64, buffer_size=2000, eps_start=0.0,
                                           eps_end=0.0, eval_every=0, seed=0), spec)
        agent.learn(1000, progress=False)
        obs = torch.as_tensor(agent.buffer.state_dict()["obs"]).float()
        with torch.no_grad():
            q = agent.q(obs)
        expected = 100.0 * torch.log(1.0 - 0.03 * (torch.tensor([-1.0, 0.0, 1.0]) - obs[:, -1:]).abs())
        errors[targets] = float((q - expected).abs().max())
    assert errors["exact"] < 0.2 and errors["sampled"] > 1.0, errors


def test_exact_mode_needs_an_env_with_exact_rewards():
    spec = EnvSpec("Pendulum-v1")
    with pytest.raises(ValueError, match="exact_reward"):
        SAC(spec.make(), SACConfig(actor_loss="exact"), spec)


def test_training_never_reads_the_test_split(tmp_path, monkeypatch):
    """A run's files are byte-identical when every test-period price is replaced."""
    from eqtrade.cli import main

    prices = planted_market(4, seed=3)
    changed = prices.copy()
    test = changed.index >= pd.Timestamp("2019-01-01")
    changed.loc[test] *= np.random.default_rng(0).uniform(0.5, 2.0, size=(int(test.sum()), 4))
    runs = []
    budget = tmp_path / "budget.toml"  # updates begin before the evaluation at step 1000
    budget.write_text("[agent]\nlearning_starts = 950\n")
    for k, p in enumerate([prices, changed]):
        csv = tmp_path / f"p{k}.csv"
        p.to_csv(csv, index_label="date")
        monkeypatch.setenv("EQTRADE_DATA", str(tmp_path / f"data{k}"))
        assert main(["data", "import", str(csv), "--name", "mkt"]) == 0
        out = tmp_path / f"run{k}"
        assert main(["train", "--agent", "exact", "--data", "mkt", "--steps", "1100", "--config", str(budget),
                     "--out", str(out), "--no-progress"]) == 0
        runs.append(out)
    names = sorted(f.name for f in runs[0].iterdir())
    assert {"config.toml", "metrics.csv", "checkpoint.pt", "best.pt"} <= set(names)
    assert names == sorted(f.name for f in runs[1].iterdir())
    for name in names:
        assert (runs[0] / name).read_bytes() == (runs[1] / name).read_bytes(), name


def test_portfolio_defaults_are_the_measured_learner_and_strategies_agree():
    from eqtrade.run import resolve_config
    from eqtrade.strategies import load_toml

    cfg = resolve_config()
    a = cfg["agent"]
    assert a["encoder"] == {"kind": "per_asset"} and a["actor_loss"] == "exact" and a["alpha_init"] == "auto"
    # one cost model (the broker's 10 bps, drift) everywhere; the regulariser a training-only penalty
    assert a["reward_scale"] == 100.0 and cfg["env"]["cost_bps"] == cfg["eval_env"].get("cost_bps", 10.0) == 10.0
    assert cfg["env"]["turnover_penalty_bps"] == 40.0 and not cfg["eval_env"].get("turnover_penalty_bps")
    for fam in ("plain", "exact", "relaxed"):
        strat = load_toml(f"strategies/sac-{fam}.toml")
        for key in ("encoder", "hidden", "actor_loss", "reward_scale", "alpha_init", "gamma"):
            assert strat["agent"][key] == a[key], (fam, key)
        assert strat["env"]["cost_bps"] == 10.0 and strat["eval_env"]["cost_bps"] == 10.0
        assert strat["env"]["turnover_penalty_bps"] == 40.0 and "turnover_penalty_bps" not in strat["eval_env"]
    dmc = resolve_config(env="Pendulum-v1")  # the portfolio defaults do not leak elsewhere
    assert "encoder" not in dmc["agent"] and "actor_loss" not in dmc["agent"]


def test_trading_dqn_defaults_are_the_tuned_setting_and_strategies_agree():
    from eqtrade.run import TRADING_AGENT, TRADING_STEPS, resolve_config
    from eqtrade.strategies import load_toml

    cfg = resolve_config(env="trading")
    assert cfg["run"]["algo"] == "dqn" and cfg["run"]["steps"] == TRADING_STEPS
    assert cfg["agent"]["targets"] == "exact" and cfg["agent"]["hidden"] == [4]
    for fam in ("plain", "exact", "relaxed"):
        strat = load_toml(f"strategies/dqn-{fam}.toml")
        assert strat["run"]["steps"] == TRADING_STEPS, fam
        for key, value in TRADING_AGENT.items():
            assert strat["agent"][key] == value, (fam, key)
        assert resolve_config(f"strategies/dqn-{fam}.toml")["agent"] == {**cfg["agent"], "family": fam,
                                                                          "eval_episodes": 1}
    assert "targets" not in resolve_config(env="CartPole-v1")["agent"]  # not leaked to other envs


def test_data_planted_command_stores_the_market_and_prints_the_rule(tmp_path, monkeypatch, capsys):
    from eqtrade.cli import main

    monkeypatch.setenv("EQTRADE_DATA", str(tmp_path))
    assert main(["data", "planted", "--name", "pm", "--assets", "3", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "dataset 'pm': 3 assets" in out and "test split: Sharpe" in out
    stored = load_prices(source="pm", data_dir=tmp_path)
    pd.testing.assert_frame_equal(stored, planted_market(3, seed=1), check_freq=False, check_names=False, rtol=1e-12)
    assert main(["data", "planted", "--name", "pm"]) == 2  # exists: --force needed


def test_evaluate_never_touches_the_training_env(small):
    spec = EnvSpec("portfolio", dict(prices=small, window=16, split=SPLIT, episode_length=60))
    env = spec.make()
    agent = SAC(env, SACConfig(family="plain", hidden=(8,), encoder={"kind": "per_asset"}, learning_starts=10,
                               batch_size=8, eval_every=0, checkpoint_every=0), spec)  # no eval env given
    agent.learn(25, progress=False)
    u = env.unwrapped
    t, w, value = u._t, u._w.copy(), u.value
    agent.evaluate()
    assert agent.eval_env is not env and u._t == t and np.array_equal(u._w, w) and u.value == value


def test_deterministic_actions_are_the_policy_mean(small):
    spec = EnvSpec("portfolio", dict(prices=small, window=16, split=SPLIT, episode_length=60))
    agent = SAC(spec.make(), SACConfig(family="relaxed", hidden=(8,), encoder={"kind": "per_asset"}), spec)
    obs = np.stack([spec.make().reset(seed=k)[0] for k in range(4)]).astype(np.float32)
    mean, _ = agent.actor(torch.from_numpy(obs))
    np.testing.assert_allclose(agent.predict(obs), torch.tanh(mean).detach().numpy(), rtol=1e-6)
    np.testing.assert_array_equal(agent.predict(obs), agent.predict(obs))
    assert not np.allclose(agent.predict(obs, deterministic=False), agent.predict(obs))


def test_checkpoints_of_an_older_format_are_a_one_line_error_naming_it(small, tmp_path, capsys):
    """Checkpoints hold the env's spec and plain state (format 3); older ones pickled the env and
    are refused with the format they have, by the library and by every command."""
    from eqtrade.agents import Agent, CheckpointError
    from eqtrade.cli import main

    spec = EnvSpec("portfolio", dict(prices=small, window=16, split=SPLIT, episode_length=60))
    agent = SAC(spec.make(), SACConfig(family="plain", hidden=(8,), learning_starts=10, batch_size=8, eval_every=0,
                                       checkpoint_every=0), spec)
    agent.learn(20, progress=False)
    agent.save(tmp_path / "new.pt")
    loaded = Agent.load(tmp_path / "new.pt")
    assert loaded.env is None and loaded.env_spec.kwargs["window"] == 16  # no env built to predict
    state = torch.load(tmp_path / "new.pt", weights_only=False)
    assert "env" not in state and state["format"] == 3 and state["provenance"]["torch"] == torch.__version__
    del state["format"]  # what a format-1 checkpoint looks like
    run = tmp_path / "old"
    run.mkdir()
    torch.save(state, run / "checkpoint.pt")
    with pytest.raises(CheckpointError, match="format 1"):
        Agent.load(run / "checkpoint.pt")
    assert main(["backtest", str(run), "--out", str(tmp_path / "bt")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "checkpoint format 1" in err[0] and "retrain" in err[0]


def test_reordering_the_assets_changes_nothing_for_per_asset_policies_only(small):
    """The WaveCorr test (Marzban et al. 2021): backtest a policy with the assets in another order.
    A per-asset network gives the same portfolio, asset for asset; a flat one does not."""
    from eqtrade.backtest.engine import rollout

    rev = small[small.columns[::-1]]
    kw = dict(window=16, split=SPLIT, full_period=True)
    out = {}
    for name, cfg in {"per-asset": dict(encoder={"kind": "per_asset"}, hidden=(8,)), "flat": dict(hidden=(32, 32))}.items():
        spec = EnvSpec("portfolio", dict(prices=small, **kw))
        agent = SAC(spec.make(), SACConfig(family="relaxed", seed=0, **cfg), spec)
        a = rollout(lambda o: agent.predict(o), EnvSpec("portfolio", dict(prices=small, **kw)).make())
        b = rollout(lambda o: agent.predict(o), EnvSpec("portfolio", dict(prices=rev, **kw)).make())  # same N
        out[name] = (a, b)
    a, b = out["per-asset"]
    np.testing.assert_allclose(b.weights[a.weights.columns].to_numpy(), a.weights.to_numpy(), atol=1e-6)
    np.testing.assert_allclose(b.returns.to_numpy(), a.returns.to_numpy(), rtol=0, atol=1e-7)  # float32 actions
    a, b = out["flat"]
    assert np.abs(b.weights[a.weights.columns].to_numpy() - a.weights.to_numpy()).max() > 1e-3
