"""Agents: smoke runs of every algorithm x family, save/load, determinism, exact resume (also
after Ctrl-C), the relaxed regulariser's reach, NaN handling, and `eqtrade train`."""

from __future__ import annotations

import signal

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
import torch

from eqtrade.agents import DQN, SAC, Agent, DQNConfig, EnvSpec, SACConfig, TrainingDiverged
from eqtrade.cli import main
from eqtrade.data import load_prices

# on the CPU: runs are bitwise reproducible there (GPU kernels may differ in the last bits)
SMALL = dict(hidden=(32, 32), batch_size=32, learning_starts=100, eval_every=150, eval_episodes=1,
             checkpoint_every=0, buffer_size=5000, device="cpu")
DQN_SMALL = dict(exploration_steps=200)


@pytest.fixture(scope="module")
def prices():
    return load_prices(["AAPL", "KO", "XOM"], start="2014-01-01", end="2016-12-31")


def portfolio_spec(prices):
    return EnvSpec("portfolio", dict(prices=prices, window=8, split=("2015-01-01", "2015-12-31"), episode_length=60),
                   dict(full_period=True))


def trading_spec(prices):
    return EnvSpec("trading", dict(prices=prices, window=8, split=("2015-01-01", "2015-12-31"), episode_length=60),
                   dict(full_period=True, ticker="KO"))


def make(algo, family, spec, **kw):
    cls, cfg = (SAC, SACConfig) if algo == "sac" else (DQN, DQNConfig)
    extra = DQN_SMALL if algo == "dqn" else {}
    return cls(spec.make(), cfg(family=family, **{**SMALL, **extra, **kw}), spec, spec.make(evaluation=True))


def params_of(agent):
    return {k: v.clone() for k, v in agent._state()[("actor" if agent.algo == "sac" else "q")].items()}


@pytest.mark.parametrize("family", ["plain", "exact", "relaxed"])
@pytest.mark.parametrize("algo,which", [("sac", "Pendulum-v1"), ("sac", "portfolio"), ("dqn", "CartPole-v1"),
                                        ("dqn", "trading")])
def test_smoke_every_algo_family_and_env(algo, which, family, prices):
    spec = {"portfolio": portfolio_spec(prices), "trading": trading_spec(prices)}.get(which, EnvSpec(which))
    agent = make(algo, family, spec, reg_coef=1e-3)
    agent.learn(300, progress=False)
    assert agent.step == 300
    evals = [m for m in agent.metrics if "eval_return" in m]
    assert evals and np.isfinite(evals[-1]["eval_return"])
    if family == "plain":
        assert evals[-1]["equivariance_error"] is None
    else:  # the measured equivariance error of the policy is reported (small but non-negative)
        err = evals[-1]["equivariance_error"]
        assert err is not None and 0 <= err < (1e-4 if family == "exact" else 1.0)
    losses = {"sac": ("critic_loss", "actor_loss", "alpha"), "dqn": ("q_loss", "epsilon")}[algo]
    assert all(np.isfinite(evals[-1][k]) for k in losses)


@pytest.mark.parametrize("algo", ["sac", "dqn"])
def test_save_load_gives_identical_predictions(algo, tmp_path, prices):
    spec = portfolio_spec(prices) if algo == "sac" else trading_spec(prices)
    agent = make(algo, "relaxed", spec)
    agent.learn(200, progress=False)
    agent.save(tmp_path / "a.pt")
    again = Agent.load(tmp_path / "a.pt", device="cpu")
    assert type(again) is type(agent)
    obs = np.stack([spec.make().reset(seed=s)[0] for s in range(5)])
    np.testing.assert_array_equal(agent.predict(obs), again.predict(obs))
    assert agent.env.action_space.contains(agent.predict(obs[0]))  # one observation -> one action


@pytest.mark.parametrize("algo,family", [("sac", "relaxed"), ("dqn", "exact")])
def test_same_seed_same_metrics(algo, family, prices):
    spec = portfolio_spec(prices) if algo == "sac" else trading_spec(prices)
    a, b = make(algo, family, spec, seed=3), make(algo, family, spec, seed=3)
    a.learn(250, progress=False)
    b.learn(250, progress=False)
    assert pd.DataFrame(a.metrics).equals(pd.DataFrame(b.metrics))
    for k, v in params_of(a).items():
        torch.testing.assert_close(v, params_of(b)[k], rtol=0, atol=0)
    c = make(algo, family, spec, seed=4)
    c.learn(250, progress=False)
    assert not pd.DataFrame(a.metrics).equals(pd.DataFrame(c.metrics))


@pytest.mark.parametrize("algo", ["sac", "dqn"])
def test_resumed_run_matches_uninterrupted(algo, tmp_path, prices):
    spec = portfolio_spec(prices) if algo == "sac" else trading_spec(prices)
    full = make(algo, "relaxed", spec, seed=1)
    full.learn(320, progress=False)
    half = make(algo, "relaxed", spec, seed=1)
    half.learn(170, progress=False)  # mid-episode, mid-learning
    half.save(tmp_path / "c.pt")
    resumed = Agent.load(tmp_path / "c.pt", build_env=True)
    resumed.learn(320, progress=False)
    assert pd.DataFrame(resumed.metrics).equals(pd.DataFrame(full.metrics))
    for k, v in params_of(full).items():
        torch.testing.assert_close(v, params_of(resumed)[k], rtol=0, atol=0)


def _resumed_across_twin_layouts(tmp_path, prices, monkeypatch, scale, family, batched_then):
    """A `family` SAC whose flat critics are saved as `batched_then` (vmapped twins, or two
    critics) and loaded by this version; (the saved agent, the loaded one), after checking that the
    layout changed and that both critics and their targets give the same values."""
    from eqtrade.agents import sac as sac_mod

    spec = portfolio_spec(prices)
    if scale:
        spec = EnvSpec("portfolio", {**spec.kwargs, "scale": scale}, spec.eval_kwargs)
    init = sac_mod.TwinCritic.__init__
    with monkeypatch.context() as m:
        m.setattr(sac_mod.TwinCritic, "__init__",
                  lambda self, q1, q2, batched, ensemble=None: init(self, q1, q2, batched_then if ensemble is None
                                                                    else batched, ensemble))
        old = make("sac", family, spec, seed=1)
        old.learn(170, progress=False)
        old.save(tmp_path / "c.pt")
    assert old.critic.batched == batched_then
    resumed = Agent.load(tmp_path / "c.pt", build_env=True)
    assert resumed.critic.batched != batched_then and resumed.critic_target.batched != batched_then
    obs = torch.as_tensor(np.stack([old.env.observation_space.sample() for _ in range(16)]), dtype=torch.float32)
    act = torch.as_tensor(np.stack([old.env.action_space.sample() for _ in range(16)]), dtype=torch.float32)
    with torch.no_grad():
        for a, b in ((old.critic, resumed.critic), (old.critic_target, resumed.critic_target)):
            torch.testing.assert_close(b(obs, act), a(obs, act), rtol=1e-5, atol=1e-6)
    return old, resumed


def _same_moments(stacked: SAC, twins: SAC) -> None:
    """The Adam moments of `stacked`'s critic parameters [2, ...] are those of `twins`' two critics."""
    per = [dict(q.named_parameters()) for q in twins.critic.qs]
    checked = 0
    for key, p in stacked.critic.params.items():  # by name: the stacked order is not a twin's
        pair = [twins.critic_opt.state[t[key.replace(":", ".")]] for t in per]
        for moment in ("exp_avg", "exp_avg_sq"):
            torch.testing.assert_close(stacked.critic_opt.state[p][moment], torch.stack([q[moment] for q in pair]),
                                       rtol=0, atol=0)
        assert float(stacked.critic_opt.state[p]["step"]) == float(pair[0]["step"]) == float(pair[1]["step"]) > 0
        checked += 1
    assert checked == len(stacked.critic.params) > 0


@pytest.mark.parametrize("scale", [None, "relaxed"])
def test_a_checkpoint_of_per_twin_critics_resumes_in_the_vmapped_twins(tmp_path, prices, monkeypatch, scale):
    """Flat exact critics ran as two modules (state qs.0.*, qs.1.*; Adam over twin 0's
    parameters, then twin 1's) before they were vmapped: such a checkpoint loads into the
    stacked twins with the same values and the same Adam moments, and trains on; with a relaxed
    scale axis too, whose masks the twins do not save (non-persistent buffers)."""
    old, resumed = _resumed_across_twin_layouts(tmp_path, prices, monkeypatch, scale, "exact", False)
    assert "qs.0.head.lift.weight" in old.critic.state_dict()
    _same_moments(resumed, old)
    resumed.learn(220, progress=False)
    assert resumed.step == 220 and np.isfinite(resumed.metrics[-1]["critic_loss"])


@pytest.mark.parametrize("scale", [None, "relaxed"])
def test_a_checkpoint_of_vmapped_twins_resumes_in_two_critics(tmp_path, prices, monkeypatch, scale):
    """Flat relaxed critics were vmapped twins (state params.*, buf_*; Adam over the stacked
    parameters) before they became two calls: such a checkpoint loads into the two critics with
    the same values and the same Adam moments, and trains on; with a relaxed scale axis too
    (masks the stacked twins saved and the critics do not)."""
    old, resumed = _resumed_across_twin_layouts(tmp_path, prices, monkeypatch, scale, "relaxed", True)
    assert any(k.startswith("params.") for k in old.critic.state_dict())
    _same_moments(old, resumed)
    resumed.learn(220, progress=False)
    assert resumed.step == 220 and np.isfinite(resumed.metrics[-1]["critic_loss"])


class CtrlC(gym.Wrapper):
    """Presses Ctrl-C (SIGINT to this process; or sends `sig`) during the env step number `at`."""

    def __init__(self, env, at, sig=signal.SIGINT):
        super().__init__(env)
        self.n, self.at, self.sig = 0, at, sig

    def step(self, a):
        self.n += 1
        if self.n == self.at:
            signal.raise_signal(self.sig)
        return self.env.step(a)


def test_ctrl_c_saves_a_checkpoint_that_resumes_exactly(tmp_path, prices):
    spec = portfolio_spec(prices)
    full = make("sac", "plain", spec, seed=2)
    full.learn(260, progress=False)
    cut = make("sac", "plain", spec, seed=2)
    cut.env = CtrlC(cut.env, 190)
    with pytest.raises(KeyboardInterrupt):
        cut.learn(260, out_dir=tmp_path, progress=False)
    resumed = Agent.load(tmp_path / "checkpoint.pt", build_env=True)  # rebuilt from the spec: no Ctrl-C wrapper
    assert resumed.step == 190  # the step in progress was completed, then it stopped
    resumed.learn(260, progress=False)
    for k, v in params_of(full).items():
        torch.testing.assert_close(v, params_of(resumed)[k], rtol=0, atol=0)


def test_relaxed_regulariser_changes_only_the_relaxed_weights_gradient(prices):
    spec = portfolio_spec(prices)
    agent = make("sac", "relaxed", spec)
    agent.learn(120, progress=False)
    with torch.no_grad():
        for n, p in agent.actor.named_parameters():
            if n.endswith("relaxed_weights"):
                p.add_(0.1 * torch.randn_like(p))
    obs = torch.from_numpy(agent.buffer.obs[:64])

    def grads(coef):
        agent.actor.zero_grad()
        mean, log_std = agent.actor(obs)
        (mean.pow(2).mean() + log_std.mean() + coef * agent.actor.regularizer()).backward()
        return {n: p.grad.clone() for n, p in agent.actor.named_parameters()}

    g0, g1 = grads(0.0), grads(1.0)
    changed = {n for n in g0 if not torch.equal(g0[n], g1[n])}
    assert changed and all(n.endswith("relaxed_weights") for n in changed)
    assert len(changed) == sum(n.endswith("relaxed_weights") for n in g0)


class NaNReward(gym.Wrapper):
    def step(self, a):
        obs, r, term, trunc, info = self.env.step(a)
        return obs, (float("nan") if self.env.unwrapped.np_random.random() < 0.3 else r), term, trunc, info


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_checkpoint(tmp_path):
    agent = SAC(NaNReward(gym.make("Pendulum-v1")), SACConfig(**{**SMALL, "checkpoint_every": 50}))
    with pytest.raises(TrainingDiverged, match="critic loss became nan at step"):
        agent.learn(400, out_dir=tmp_path, progress=False)
    kept = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert kept["step"] <= agent.step and all(
        torch.isfinite(v).all() for v in kept["nets"]["actor"].values())


def test_eqtrade_train_cli_writes_the_run_and_resumes(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    cfg = tmp_path / "s.toml"
    cfg.write_text('[run]\nenv = "trading"\nsteps = 200\n[env]\nwindow = 8\nsplit = ["2015-01-01", "2015-12-31"]\n'
                   'episode_length = 50\n[eval_env]\nsplit = ["2016-01-01", "2016-06-30"]\nfull_period = true\n'
                   'ticker = "KO"\n[agent]\nhidden = [16, 16]\nbatch_size = 16\nlearning_starts = 50\n'
                   'eval_every = 100\ncheckpoint_every = 100\n')
    assert main(["train", "--agent", "relaxed", "--config", str(cfg), "--out", "runs/t", "--no-progress"]) == 0
    run = tmp_path / "runs" / "t"
    assert {"config.toml", "checkpoint.pt", "metrics.csv", "learning_curve.png"} <= {p.name for p in run.iterdir()}
    m = pd.read_csv(run / "metrics.csv")
    assert {"step", "episode_return", "q_loss", "epsilon", "eval_return", "equivariance_error"} <= set(m.columns)
    text = (run / "config.toml").read_text()
    assert 'algo = "dqn"' in text and 'family = "relaxed"' in text and "n_step" in text  # resolved, defaults included
    assert "trained dqn relaxed for 200 steps" in capsys.readouterr().out
    assert main(["train", "--out", "runs/t", "--resume", "--steps", "300", "--no-progress"]) == 0
    assert pd.read_csv(run / "metrics.csv")["step"].max() == 300
    assert main(["train", "--config", str(cfg), "--out", "runs/t", "--no-progress"]) == 2  # refuses to overwrite


def test_family_needs_a_declared_symmetry():
    with pytest.raises(ValueError, match="declares none"):
        SAC(gym.make("MountainCarContinuous-v0"), SACConfig(family="relaxed"), EnvSpec("MountainCarContinuous-v0"))
