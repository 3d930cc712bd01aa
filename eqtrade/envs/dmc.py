"""dm_control suite tasks as gymnasium environments that declare their symmetry, with
symmetry-broken variants and a check of the declared symmetry on the simulator itself.

Ids are ``dmc/DOMAIN-TASK`` (``dmc/cartpole-swingup``, ...), registered on ``import eqtrade``.
Observations are the suite's state observations flattened in the fixed order of `DOMAINS`
(``layout``); reacher's joint angles are encoded as (cos, sin) so that rotations act linearly.

Breaking the symmetry: ``break_strength`` s in [0, 1] tilts gravity by s x ``max_tilt_deg``
(30° by default) about the world y axis: g = 9.81 (sin φ, 0, -cos φ). For the domains that move in
the x-z plane (cartpole, pendulum, acrobot, ball_in_cup) this is a horizontal pull that breaks
the left/right reflection; for reacher, whose arm moves in the horizontal x-y plane, it is an
in-plane pull along +x (a tilted table), an anisotropy that breaks the rotations. s = 0 is the
suite's task unchanged.

Why not shimmy's adapter: the symmetry check needs to read and set the full physics state
(and reacher's target, which lives in the model), and reacher needs its own observation
encoding; both sit below shimmy's interface, so this is a thin wrapper over ``dm_control.suite``
(the same time limits, action specs and rewards).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from ..symmetry import Symmetry
from ..symmetry.library import (
    acrobot_reflection, ball_in_cup_reflection, cartpole_reflection, pendulum_reflection, planar_rotation,
)

os.environ.setdefault("MUJOCO_GL", "disable")  # state observations only: no OpenGL needed

GRAVITY = 9.81
MAX_TILT_DEG = 30.0  # gravity tilt at break strength 1


def _flat(obs: dict) -> np.ndarray:
    return np.concatenate([np.asarray(v, dtype=np.float64).ravel() for v in obs.values()])


def _reacher_obs(obs: dict) -> np.ndarray:
    q = np.asarray(obs["position"], dtype=np.float64)
    return np.concatenate([[np.cos(q[0]), np.sin(q[0]), np.cos(q[1]), np.sin(q[1])],
                           np.asarray(obs["to_target"], dtype=np.float64), np.asarray(obs["velocity"], dtype=np.float64)])


@dataclass(frozen=True)
class Domain:
    """What eqtrade knows about one dm_control domain."""

    layout: str  # the flattened observation, in order
    symmetry: Callable[..., Symmetry]
    qpos_sign: tuple = ()  # reflection domains: sign of each qpos/qvel entry under the flip
    tasks: tuple = ()
    action_repeat: int = 4  # default, as in the DMC literature (PlaNet/DrQ: cartpole 8, others 4)
    encode: Callable[[dict], np.ndarray] = _flat
    planar: bool = False  # reacher: rotations about the arm's base (acts on joint 0 and the target)
    extra: dict = field(default_factory=dict)


DOMAINS: dict[str, Domain] = {
    "cartpole": Domain("[cart x, cos θ, sin θ, ẋ, θ̇]", cartpole_reflection, (-1, -1),
                       ("swingup", "balance"), action_repeat=8),
    "pendulum": Domain("[cos θ, sin θ, θ̇]", pendulum_reflection, (-1,), ("swingup",)),
    "acrobot": Domain("[sin θ1, sin θ2, cos θ1, cos θ2, θ̇1, θ̇2] (world-frame orientations of both links)",
                      acrobot_reflection, (-1, -1), ("swingup",)),
    "ball_in_cup": Domain("[cup x, cup z, ball x, ball z, and their 4 velocities]", ball_in_cup_reflection,
                          (-1, 1, -1, 1), ("catch",)),
    "reacher": Domain("[cos q1, sin q1, cos q2, sin q2, target-finger x, y, q̇1, q̇2]", planar_rotation,
                      tasks=("easy",), encode=_reacher_obs, planar=True),
}

#: the registered gymnasium ids
ENV_IDS = tuple(f"dmc/{d}-{t}" for d, spec in DOMAINS.items() for t in spec.tasks)


def parse_env_id(env_id: str) -> tuple[str, str]:
    """``dmc/cartpole-swingup`` -> (``cartpole``, ``swingup``), with a clear error."""
    from .factory import DMC_PREFIX

    name = env_id.removeprefix(DMC_PREFIX)
    domain, _, task = name.rpartition("-")
    if domain not in DOMAINS or task not in DOMAINS[domain].tasks:
        raise ValueError(f"unknown dm_control task {env_id!r}; known: {', '.join(ENV_IDS)}")
    return domain, task


class DMCEnv(gym.Env):
    """A dm_control suite task with a declared `symmetry` and an optional symmetry break.

    Args:
        domain, task: a suite task listed in `DOMAINS` (e.g. "cartpole", "swingup").
        break_strength: 0 (exact task) .. 1 (gravity tilted by `max_tilt_deg`).
        action_repeat: simulator control steps per env step (rewards are summed); default per
            domain (cartpole 8, others 4). Episodes last the suite's 1000 control steps, i.e.
            1000 / action_repeat env steps, and end truncated (never terminated).
        rotations, dihedral: reacher's group, C_N (default C4) or D_N.
    """

    metadata = {"render_modes": []}

    def __init__(self, domain: str = "cartpole", task: str = "swingup", break_strength: float = 0.0,
                 action_repeat: int | None = None, max_tilt_deg: float = MAX_TILT_DEG, rotations: int = 4,
                 dihedral: bool = False):
        if domain not in DOMAINS or task not in DOMAINS[domain].tasks:
            raise ValueError(f"unknown dm_control task {domain}-{task}; known: {', '.join(ENV_IDS)}")
        s = float(break_strength)
        if not (0.0 <= s <= 1.0) or not np.isfinite(s):
            raise ValueError(f"break_strength must lie in [0, 1], got {break_strength!r}")
        spec = DOMAINS[domain]
        repeat = spec.action_repeat if action_repeat is None else int(action_repeat)
        if repeat < 1:
            raise ValueError(f"action_repeat must be >= 1, got {action_repeat!r}")
        self.domain, self.task, self.break_strength, self.action_repeat = domain, task, s, repeat
        self._spec = spec
        self.symmetry: Symmetry = (planar_rotation(rotations, dihedral) if spec.planar else spec.symmetry())

        from dm_control import suite

        self._env = suite.load(domain, task, task_kwargs={"random": np.random.RandomState()})
        self.physics = self._env.physics
        phi = np.deg2rad(max_tilt_deg * s)
        self.physics.model.opt.gravity[:] = GRAVITY * np.array([np.sin(phi), 0.0, -np.cos(phi)])
        self._n_sub = self._env._n_sub_steps
        a = self._env.action_spec()
        self.action_space = spaces.Box(a.minimum.astype(np.float32), a.maximum.astype(np.float32), dtype=np.float32)
        dim = sum(int(np.prod(v.shape)) for v in self._env.observation_spec().values())
        dim += 2 if spec.planar else 0  # reacher: two angles become (cos, sin) pairs
        if dim != self.symmetry.obs_dim:
            raise AssertionError(f"{domain}: observation has {dim} entries, its symmetry expects {self.symmetry.obs_dim}")
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(dim,), dtype=np.float64)
        self._started = False

    # -- gymnasium ------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self._env.task._random = np.random.RandomState(seed)
        ts = self._env.reset()
        self._started = True
        return self._spec.encode(ts.observation), {"frames": 0}

    def _check_action(self, action) -> np.ndarray:
        a = np.asarray(action, dtype=np.float64)
        if a.shape != self.action_space.shape:
            a = a.reshape(-1) if a.size == self.action_space.shape[0] else a
            if a.shape != self.action_space.shape:
                raise ValueError(f"action must have shape {self.action_space.shape}, got {np.shape(action)}")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"action must be finite, got {a}")
        return np.clip(a, self.action_space.low, self.action_space.high)

    def step(self, action):
        if not self._started:
            raise RuntimeError("call reset() before step()")
        a = self._check_action(action)
        reward, frames, ts = 0.0, 0, None
        for _ in range(self.action_repeat):
            ts = self._env.step(a)
            reward += float(ts.reward or 0.0)
            frames += 1
            if ts.last():
                break
        terminated = bool(ts.last() and ts.discount == 0.0)
        truncated = bool(ts.last() and not terminated)
        if ts.last():
            self._started = False
        return self._spec.encode(ts.observation), reward, terminated, truncated, {"frames": frames}

    # -- physics state and the symmetry check ---------------------------------------------------
    def get_state(self) -> dict:
        """The physical state: qpos, qvel (and reacher's target position, which is in the model)."""
        d = self.physics.data
        st = {"qpos": d.qpos.copy(), "qvel": d.qvel.copy(), "act": d.act.copy()}
        if self._spec.planar:
            st["target"] = self.physics.named.model.geom_pos["target", :2].copy()
        return st

    def set_state(self, st: dict) -> None:
        """Set the physical state (warm starts cleared, derived quantities recomputed)."""
        with self.physics.reset_context():
            self.physics.data.qpos[:] = st["qpos"]
            self.physics.data.qvel[:] = st["qvel"]
            self.physics.data.act[:] = st["act"]
            if "target" in st:
                self.physics.named.model.geom_pos["target", :2] = st["target"]

    def transform_state(self, st: dict, g: int) -> dict:
        """g acting on the physical state, consistent with `symmetry.transform_obs`."""
        out = {k: v.copy() for k, v in st.items()}
        if g == 0:
            return out
        if self._spec.planar:
            m = self.symmetry.obs_matrices()[g][:2, :2]  # acts on (cos q1, sin q1)
            c, s_ = m @ np.array([np.cos(st["qpos"][0]), np.sin(st["qpos"][0])])
            det = float(np.sign(np.linalg.det(m)))
            out["qpos"][0] = np.arctan2(s_, c)
            out["qpos"][1] = det * st["qpos"][1]
            out["qvel"] = det * st["qvel"]
            out["target"] = m @ st["target"]
            return out
        sign = np.asarray(self._spec.qpos_sign, dtype=np.float64)
        out["qpos"], out["qvel"] = sign * st["qpos"], sign * st["qvel"]
        return out

    def simulate(self, st: dict, action) -> tuple[np.ndarray, float]:
        """From state `st`, apply `action` for one env step (action_repeat control steps):
        (observation, summed reward). Does not touch the episode in progress's bookkeeping."""
        self.set_state(st)
        task, phys = self._env.task, self.physics
        reward = 0.0
        for _ in range(self.action_repeat):
            task.before_step(np.asarray(action, dtype=np.float64), phys)
            for _ in range(self._n_sub):
                phys.step()
            task.after_step(phys)
            reward += float(task.get_reward(phys))
        return self._spec.encode(task.get_observation(phys)), reward

    # -- resuming an episode (checkpoints; see eqtrade.envs.protocol) --------------------------
    def episode_state(self) -> dict:
        """The episode in progress as plain data: physics state, time, task RNG, step counters."""
        e = self._env
        return {"state": self.get_state(), "time": float(self.physics.data.time),
                "target_size": self.physics.model.geom_size.copy(), "task_rng": e.task.random.get_state(),
                "step_count": e._step_count, "reset_next": e._reset_next_step, "started": self._started,
                "np_random": None if self._np_random is None else self._np_random.bit_generator.state}

    def restore_episode(self, d: dict) -> None:
        self.physics.model.geom_size[:] = d["target_size"]
        self.set_state(d["state"])
        self.physics.data.time = d["time"]
        self._env.task._random.set_state(d["task_rng"])
        self._env._step_count, self._env._reset_next_step = d["step_count"], d["reset_next"]
        self._started = d["started"]
        if d["np_random"] is not None:
            self._np_random = np.random.Generator(np.random.PCG64())
            self._np_random.bit_generator.state = d["np_random"]


def make(env_id: str, **kwargs) -> DMCEnv:
    """A `DMCEnv` from an id such as ``dmc/cartpole-swingup``."""
    domain, task = parse_env_id(env_id)
    return DMCEnv(domain, task, **kwargs)


def symmetry_check(env: DMCEnv, n_states: int = 32, seed: int = 0) -> dict:
    """Check the declared symmetry on the simulator: for states s visited by a random policy,
    random actions a and every g ≠ e, compare the next observation and reward of (g·s, g·a)
    with g applied to those of (s, a).

    Returns eps_P (mean relative transition error ‖o(gs,ga) − g·o(s,a)‖ / ‖o(s,a)‖), eps_P_max
    (largest absolute entry error), eps_R (mean |r(gs,ga) − r(s,a)|) and eps_R_max.
    """
    rng = np.random.default_rng(seed)
    sym = env.symmetry
    low, high = env.action_space.low.astype(np.float64), env.action_space.high.astype(np.float64)
    states = []
    env.reset(seed=seed)
    every = max(1, 1000 // env.action_repeat // max(1, n_states // 2))
    k = 0
    while len(states) < n_states:
        _, _, term, trunc, _ = env.step(rng.uniform(low, high))
        k += 1
        if k % every == 0:
            states.append(env.get_state())
        if term or trunc:
            env.reset(seed=seed + k)
    rel, abs_p, abs_r = [], [], []
    for st in states:
        a = rng.uniform(low, high)
        o1, r1 = env.simulate(st, a)
        for g in range(1, sym.order):
            o2, r2 = env.simulate(env.transform_state(st, g), sym.transform_action(a, g))
            d = o2 - sym.transform_obs(o1, g)
            rel.append(np.linalg.norm(d) / max(np.linalg.norm(o1), 1e-12))
            abs_p.append(np.abs(d).max())
            abs_r.append(abs(r2 - r1))
    env.reset(seed=seed)
    return {"eps_P": float(np.mean(rel)), "eps_P_max": float(np.max(abs_p)),
            "eps_R": float(np.mean(abs_r)), "eps_R_max": float(np.max(abs_r)), "pairs": len(rel)}
