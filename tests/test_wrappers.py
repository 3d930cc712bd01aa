"""The observation wrappers the env factory composes: frame stacking is a wrapper (not inside the
pixel env), commutes with every group element's action on images, and carries its frames
through a checkpoint's episode state."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from eqtrade.envs.protocol import episode_state, restore_episode, symmetry_of
from eqtrade.envs.wrappers import FrameStack, ObservationNoise
from eqtrade.symmetry import cartpole_reflection
from eqtrade.symmetry.image import image_transform
from eqtrade.symmetry.library import planar_rotation


class FrameEnv(gym.Env):
    """Random [3, 8, 8] uint8 frames; the episode state is its generator's."""

    symmetry = cartpole_reflection()

    def __init__(self):
        self.observation_space = spaces.Box(0, 255, (3, 8, 8), dtype=np.uint8)
        self.action_space = spaces.Box(-1.0, 1.0, (1,), dtype=np.float32)

    def _frame(self):
        return self.np_random.integers(0, 256, (3, 8, 8), dtype=np.uint8)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._frame(), {}

    def step(self, action):
        self.t += 1
        return self._frame(), 0.0, False, self.t >= 20, {}

    def episode_state(self):
        return {"t": self.t, "rng": self.np_random.bit_generator.state}

    def restore_episode(self, s):
        self.t = s["t"]
        self.np_random.bit_generator.state = s["rng"]


def _frames(env, n, seed=0):
    out = [env.reset(seed=seed)[0]]
    out += [env.step(np.zeros(1))[0] for _ in range(n)]
    return out


def test_frame_stack_keeps_the_last_frames_oldest_first():
    raw, env = FrameEnv(), FrameStack(FrameEnv(), 3)
    assert env.observation_space.shape == (9, 8, 8) and env.observation_space.dtype == np.uint8
    frames = _frames(raw, 5)
    stacks = _frames(env, 5)
    np.testing.assert_array_equal(stacks[0], np.concatenate([frames[0]] * 3))  # reset repeats the first
    for t in range(1, 6):
        want = np.concatenate([frames[max(t - 2, 0)], frames[max(t - 1, 0)], frames[t]])
        np.testing.assert_array_equal(stacks[t], want)
    assert symmetry_of(env) is FrameEnv.symmetry  # the symmetry passes through
    with pytest.raises(ValueError, match="frames must be a whole number >= 1, got 0"):
        FrameStack(FrameEnv(), 0)


@pytest.mark.parametrize("sym", [cartpole_reflection(), planar_rotation(4), planar_rotation(4, dihedral=True)],
                         ids=lambda s: s.name + str(s.order))
def test_every_group_element_commutes_with_frame_stacking(sym):
    """g·(the wrapper's stack of f1, f2, f3) = the stack of g·f1, g·f2, g·f3, over random frames and
    every g: the stacked env keeps the pixel env's image symmetry."""
    raw, env = FrameEnv(), FrameStack(FrameEnv(), 3)
    frames, stacks = _frames(raw, 6, seed=2), _frames(env, 6, seed=2)
    for t in range(2, 7):
        for g in range(sym.order):
            lhs = image_transform(sym, stacks[t], g)
            rhs = np.concatenate([image_transform(sym, f, g) for f in frames[t - 2: t + 1]])
            np.testing.assert_array_equal(lhs, rhs)


def test_a_stacked_episode_resumes_from_its_episode_state():
    """The checkpoint's episode state holds the env's and the stack's: a fresh env restored from
    it continues with the same observations (without the stack, the first two would differ)."""
    env = FrameStack(FrameEnv(), 3)
    _frames(env, 4, seed=1)
    state = episode_state(env)
    assert [n for n, _ in state["wrappers"]] == ["FrameStack"] and len(state["wrappers"][0][1]["stack"]) == 3
    other = FrameStack(FrameEnv(), 3)
    assert restore_episode(other, state)
    for _ in range(4):
        np.testing.assert_array_equal(other.step(np.zeros(1))[0], env.step(np.zeros(1))[0])
    with pytest.raises(ValueError, match="through wrappers"):
        restore_episode(ObservationNoise(FrameEnv(), 0.1), state)
