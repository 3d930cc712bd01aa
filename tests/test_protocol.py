"""The env–agent contract holds by construction: SAC trains with full-information rewards on a
toy env of this test's own (not a trading env), seeing it only through its spaces, its declared
Symmetry and its ExactReward (through gymnasium's wrappers), saves and resumes it exactly from
plain episode state, and predicts from a checkpoint without building any env."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
import torch
from gymnasium import spaces

from eqtrade.agents import SAC, Agent, EnvSpec, SACConfig
from eqtrade.envs.protocol import (EnvInterface, ExactReward, asset_axis_of, episode_state, exact_reward_of,
                                   symmetry_of)
from eqtrade.symmetry import Symmetry

TOY_ID = "eqtrade-test/Signal-v0"
COST = 0.01


class SignalExactReward(ExactReward):
    """reward = a·r_next − COST·|a − held|; the next observation holds a."""

    extra_dim = 1

    def __init__(self, env):
        self.env = env

    def last_extras(self):
        return np.array([self.env.last_return])

    def __call__(self, obs, action, extras, next_obs):
        a = action.clamp(-1, 1)[:, 0]
        r = a * extras[:, 0] - COST * (a - obs[:, 1]).abs()
        return r, torch.cat([next_obs[:, :1], a[:, None]], dim=1), torch.ones_like(r)


class SignalEnv(gym.Env):
    """obs = [x_t, held]: tomorrow's return is 0.02·x_t + noise; a position a in [-1, 1]. Its
    step `info` is empty: nothing can be learnt from info keys."""

    symmetry = Symmetry("toy-reflection", "C", 2, obs_reps=(("sign", 2),), action_reps=(("sign", 1),),
                        description="x -> -x, held -> -held, a -> -a")

    def __init__(self, length: int = 50):
        self.observation_space = spaces.Box(-np.inf, np.inf, (2,), dtype=np.float64)
        self.action_space = spaces.Box(-1.0, 1.0, (1,), dtype=np.float32)
        self.length = length
        self.exact_reward = SignalExactReward(self)

    def _obs(self):
        return np.array([self.x, self.held])

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t, self.held, self.x = 0, 0.0, float(self.np_random.standard_normal())
        return self._obs(), {}

    def step(self, action):
        a = float(np.clip(np.asarray(action).reshape(-1)[0], -1, 1))
        self.last_return = 0.02 * self.x + 0.005 * float(self.np_random.standard_normal())
        r = a * self.last_return - COST * abs(a - self.held)
        self.held, self.x, self.t = a, float(self.np_random.standard_normal()), self.t + 1
        return self._obs(), r, False, self.t >= self.length, {}

    def episode_state(self):
        return {"t": self.t, "held": self.held, "x": self.x, "rng": self.np_random.bit_generator.state}

    def restore_episode(self, s):
        self.t, self.held, self.x = s["t"], s["held"], s["x"]
        self.np_random.bit_generator.state = s["rng"]


if TOY_ID not in gym.registry:
    gym.register(TOY_ID, entry_point=SignalEnv)

CFG = dict(family="exact", actor_loss="exact", hidden=(16,), learning_starts=100, batch_size=64, eval_every=200,
           eval_episodes=2, checkpoint_every=0, buffer_size=5000, reward_scale=50.0, alpha_init="auto", gamma=0.5,
           device="cpu")


def test_the_protocol_is_found_through_gymnasium_wrappers():
    env = EnvSpec(TOY_ID).make()  # gym.make: OrderEnforcing, PassiveEnvChecker around the toy env
    assert isinstance(env, gym.Wrapper)
    assert symmetry_of(env) is SignalEnv.symmetry and isinstance(exact_reward_of(env), SignalExactReward)
    assert asset_axis_of(env) is None
    iface = EnvInterface.of(env)
    assert iface.exact_reward is not None and iface.observation_space.shape == (2,)


def test_sac_learns_with_full_information_rewards_on_a_toy_env(tmp_path):
    spec = EnvSpec(TOY_ID)
    agent = SAC(spec.make(), SACConfig(**CFG), spec)
    agent.learn(800, out_dir=tmp_path, progress=False)
    # the buffer recorded the extras through the protocol (not through info)
    n = len(agent.buffer)
    assert agent.buffer.extras.shape[1] == 1 and np.abs(agent.buffer.extras[:n]).max() > 0
    x = np.linspace(-2, 2, 21)
    obs = np.stack([x, np.zeros_like(x)], axis=1)
    a = agent.predict(obs)[:, 0]
    assert np.corrcoef(a, x)[0, 1] > 0.8 and a[-1] > 0.3 and a[0] < -0.3, a  # long the signal, short against it
    evals = [m for m in agent.metrics if "eval_return" in m]
    assert evals[-1]["eval_return"] > 0 and evals[-1]["equivariance_error"] < 1e-5  # the exact family stays exact
    assert "eval_sharpe" not in evals[-1]  # no trading evaluation for an env that is not a trading env
    # a checkpoint predicts without any env, and reads back the declared interface
    loaded = Agent.load(tmp_path / "checkpoint.pt")
    assert loaded.env is None and loaded.eval_env is None and loaded.symmetry == SignalEnv.symmetry
    np.testing.assert_array_equal(loaded.predict(obs), agent.predict(obs))


def test_resume_from_plain_episode_state_is_exact(tmp_path):
    spec = EnvSpec(TOY_ID)
    cfg = dict(CFG, eval_every=100)
    full = SAC(spec.make(), SACConfig(**cfg), spec)
    full.learn(260, progress=False)
    half = SAC(spec.make(), SACConfig(**cfg), spec)
    half.learn(175, progress=False)  # mid-episode
    half.save(tmp_path / "c.pt")
    state = torch.load(tmp_path / "c.pt", weights_only=False)
    assert state["episode_state"]["env"]["t"] == 25 and "env" not in state  # plain data, no pickled env
    resumed = Agent.load(tmp_path / "c.pt", build_env=True)
    assert episode_state(resumed.env) == episode_state(half.env)
    resumed.learn(260, progress=False)
    assert pd.DataFrame(resumed.metrics).equals(pd.DataFrame(full.metrics))
    for k, v in full.actor.state_dict().items():
        torch.testing.assert_close(v, resumed.actor.state_dict()[k], rtol=0, atol=0)


def test_a_damaged_checkpoint_is_a_one_line_error_with_the_way_out(tmp_path):
    from eqtrade.agents import CheckpointError

    spec = EnvSpec(TOY_ID)
    agent = SAC(spec.make(), SACConfig(**dict(CFG, learning_starts=10, batch_size=8)), spec)
    agent.learn(20, progress=False)
    agent.save(tmp_path / "checkpoint.pt")
    agent.save(tmp_path / "best.pt", include_buffer=False)
    data = (tmp_path / "best.pt").read_bytes()
    (tmp_path / "best.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"best.pt is not a readable eqtrade checkpoint.*--checkpoint last"):
        Agent.load(tmp_path / "best.pt")
    (tmp_path / "best.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="is empty"):
        Agent.load(tmp_path / "best.pt")
