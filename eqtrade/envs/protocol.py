"""The env–agent contract: everything an agent may know of an environment.

An agent sees an env only through
- its gymnasium spaces;
- its declared `Symmetry` (`symmetry_of`): an attribute ``symmetry`` on the env or on one of
  its wrappers (the env factory attaches the known symmetry of gymnasium's own tasks);
- where the env has exchangeable assets, its `AssetAxis` (`asset_axis_of`: the layout of each
  asset's components and the assets' names), which per-asset networks are built from;
- where the env's observations are made of returns, its `ScaleAxis` (`scale_axis_of`): how
  R -> c·R acts on them and which return-scale family they are (exact, relaxed, plain);
- where the env offers it, an `ExactReward` (`exact_reward_of`): for markets that ignore the
  agent, the reward and next observation of *any* action from one stored transition, plus the
  per-transition side information ("extras") the buffer must keep to compute them;
- where the env offers it, its episode state (`episode_state` / `restore_episode`): plain data
  from which a checkpoint resumes the episode in progress exactly (no pickled env).

`EnvInterface` bundles the first three; it is what a checkpoint stores so that a saved agent
predicts without building its env. An `EnvSpec` (eqtrade.envs.factory: id + keyword arguments)
is how a checkpoint names the env it trained on. Nothing here names a particular env.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from ..symmetry import AssetAxis, ScaleAxis, Symmetry
from ..util import Range

#: the allowed values of the trading envs' and their wrappers' numeric options
ENV_OPTION_RANGES = {
    "window": ("int", Range(1, note="days of returns in each observation")),
    "episode_length": ("int", Range(1, note="decisions per episode")),
    "cost_bps": ("number", Range(0, note="the cost per unit of turnover, in basis points")),
    "turnover_penalty_bps": ("number", Range(0, note="a training-only reward penalty per unit of turnover, in basis points")),
    "risk_aversion": ("number", Range(0, note="a training-only reward penalty (κ/2)·r² on the step's portfolio return r")),
    "borrow_bps": ("number", Range(0, 10_000, note="the annual fee on short weights held, in basis points")),
    "vol_window": ("int", Range(1, note="days of the trailing volatility that scales returns")),
    "clip": ("number", Range(0, lo_open=True, note="scaled returns are clipped to +-clip")),
    "noise_seed": ("int", Range(0)),
    "stale_ticks": ("number", Range(0, 1, note="the probability that a day's price is stale (the previous day's)")),
    "bad_ticks": ("number", Range(0, 1, note="the probability that a day's return is an outlier of 5 volatilities")),
}


#: the allowed values of the trading envs' options that are one of a few names
ENV_OPTION_CHOICES = {
    "fill": (("close", "next_close"), "when an order fills: at the close it was decided on (close), or one "
                                      "trading day later (next_close: decided on the data up to the day before)"),
    "action_map": (("normalize", "per_asset"), "how a long/short action becomes weights: a / max(1, Σ|a|) (normalize) "
                                              "or a / N (per_asset: each asset's share of an equal-weight book)"),
}


def check_env_choices(**values) -> None:
    """A ValueError naming the option, its value and the choices, for each option given that is
    not one of its choices (see ENV_OPTION_CHOICES)."""
    for name, value in values.items():
        choices, note = ENV_OPTION_CHOICES[name]
        if not isinstance(value, str) or value not in choices:
            raise ValueError(f"{name} = {value!r} is not one of {', '.join(repr(c) for c in choices)} ({note})")


def check_env_options(**values) -> None:
    """A TypeError (wrong type) or ValueError (out of range, NaN, inf) naming the option, its
    value and what it must be, for each env option given (see ENV_OPTION_RANGES)."""
    for name, value in values.items():
        kind, rng = ENV_OPTION_RANGES[name]
        ok = (isinstance(value, (int, np.integer)) if kind == "int"
              else isinstance(value, (int, float, np.integer, np.floating))) and not isinstance(value, (bool, np.bool_))
        if not ok:
            raise TypeError(f"{name} = {value!r} has the wrong type: expected "
                            f"{'an integer' if kind == 'int' else 'a number'} {rng}")
        rng.check(name, int(value) if kind == "int" else float(value))



class ExactReward(abc.ABC):
    """Full-information rewards: the batched, differentiable reward of any action.

    `extra_dim` numbers per transition are needed besides (obs, next_obs); the env provides those
    of its last step through `last_extras()`, which the agent calls right after `env.step` and
    stores in its replay buffer. `__call__(obs, action, extras, next_obs)` takes torch batches
    [B, ...] and returns (reward [B], next observation [B, d_obs] with the agent's own part
    replaced as the action would have left it, alive [B]: 0 where the action ends the episode).
    """

    extra_dim: int
    #: the observation's trailing columns that are the agent's own (its book or position), the
    #: only part of the next observation an action changes: `own` then computes those alone (an
    #: update that reads the rest from its stored next_obs builds no next observation); 0: `own`
    #: is not offered
    own_dim: int = 0

    def own(self, held, action, extras):
        """`__call__` on the own columns alone: (reward [B], the next observation's own columns
        [B, own_dim], alive [B]) of `action` from `held` = obs[:, -own_dim:]; the next
        observation is the stored next_obs with its own columns replaced by these."""
        raise NotImplementedError(f"{type(self).__name__} offers no own-columns reward (own_dim = 0)")

    @abc.abstractmethod
    def last_extras(self) -> np.ndarray:
        """The extras of the env's most recent transition ([extra_dim] float array)."""

    @abc.abstractmethod
    def __call__(self, obs, action, extras, next_obs):
        """(reward, next_obs, alive) of `action` in `obs` (torch, batched, differentiable in action)."""


def _declaring_layer(env: gym.Env, name: str) -> gym.Env:
    """The outermost wrapper that defines attribute `name`, else the unwrapped env."""
    e = env
    while isinstance(e, gym.Wrapper):  # gymnasium wrappers do not forward attributes
        if name in vars(e) or any(name in vars(k) for k in type(e).__mro__):
            return e
        e = e.env
    return e


def _wrapper_attr(env: gym.Env, name: str) -> Any:
    """An attribute of the env or of one of its wrappers (outermost first), else None."""
    return getattr(_declaring_layer(env, name), name, None)


def symmetry_of(env: gym.Env) -> Symmetry | None:
    """The symmetry an env declares (on itself or a wrapper), or None."""
    sym = _wrapper_attr(env, "symmetry")
    if sym is not None and not isinstance(sym, Symmetry):
        raise TypeError(f"{env}: `symmetry` must be an eqtrade.symmetry.Symmetry, got {type(sym).__name__}")
    return sym


def exact_reward_of(env: gym.Env) -> ExactReward | None:
    """The env's full-information reward protocol, or None where it has none."""
    er = _wrapper_attr(env, "exact_reward")
    if er is not None and not isinstance(er, ExactReward):
        raise TypeError(f"{env}: `exact_reward` must implement eqtrade.envs.protocol.ExactReward, "
                        f"got {type(er).__name__}")
    return er


def asset_axis_of(env: gym.Env) -> AssetAxis | None:
    """The env's exchangeable-asset layout (attribute ``asset_axis``), or None."""
    ax = _wrapper_attr(env, "asset_axis")
    if ax is not None and not isinstance(ax, AssetAxis):
        raise TypeError(f"{env}: `asset_axis` must be an eqtrade.symmetry.AssetAxis, got {type(ax).__name__}")
    return ax


def sliding_window_of(env: gym.Env) -> tuple[int, int] | None:
    """(W, N) where the env declares (attribute ``sliding_window``) that its observations begin,
    along their first axis, with W blocks of N entries, oldest first, and that a step drops the
    oldest block and appends a new one (a frame stack: W frames of N channels); else None. A
    replay may then keep only each next observation's new block (it checks every transition)."""
    layer = _declaring_layer(env, "sliding_window")
    w = getattr(layer, "sliding_window", None)
    # a wrapper outside the declaring layer that changes the observations' shape voids it
    if w is None or layer.observation_space.shape != env.observation_space.shape:
        return None
    if (not isinstance(w, tuple) or len(w) != 2
            or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1 for v in w)):
        raise TypeError(f"{env}: `sliding_window` must be a tuple (W, N) of positive whole numbers, got {w!r}")
    return int(w[0]), int(w[1])


def scale_axis_of(env: gym.Env) -> ScaleAxis | None:
    """How the return-scale transformation acts on the env's observations (attribute
    ``scale_axis``), or None where the env has no returns."""
    ax = _wrapper_attr(env, "scale_axis")
    if ax is not None and not isinstance(ax, ScaleAxis):
        raise TypeError(f"{env}: `scale_axis` must be an eqtrade.symmetry.ScaleAxis, got {type(ax).__name__}")
    return ax


@dataclass(frozen=True)
class EnvInterface:
    """What an agent knows of its env: spaces, symmetry, and the exact-reward protocol (None when
    the interface was read back from a checkpoint: it serves predictions, not full-information updates)."""

    observation_space: gym.Space
    action_space: gym.Space
    symmetry: Symmetry | None = None
    exact_reward: ExactReward | None = None
    assets: AssetAxis | None = None
    scale: ScaleAxis | None = None
    window: tuple[int, int] | None = None  # `sliding_window_of`

    @classmethod
    def of(cls, env: gym.Env) -> "EnvInterface":
        return cls(env.observation_space, env.action_space, symmetry_of(env), exact_reward_of(env),
                   asset_axis_of(env), scale_axis_of(env), sliding_window_of(env))

    def to_state(self) -> dict:
        """Plain data for a checkpoint (the exact-reward protocol is the env's, not saved)."""
        return {"observation_space": self.observation_space, "action_space": self.action_space,
                "symmetry": self.symmetry, "assets": self.assets, "scale": self.scale, "window": self.window}

    @classmethod
    def from_state(cls, s: dict) -> "EnvInterface":
        # checkpoints from before the scale axis (or the sliding window) have none
        return cls(s["observation_space"], s["action_space"], s["symmetry"], None, s["assets"], s.get("scale"),
                   s.get("window"))


def _layers(env: gym.Env) -> list:
    """The env's layers, outermost wrapper first, the unwrapped env last."""
    out, e = [], env
    while isinstance(e, gym.Wrapper):
        out.append(e)
        e = e.env
    return out + [e]


def _own(layer, name: str):
    """`layer.name` when the layer's own class defines it (gymnasium wrappers forward nothing)."""
    return getattr(layer, name) if callable(getattr(type(layer), name, None)) else None


def episode_state(env: gym.Env) -> dict | None:
    """The episode in progress as plain data: the unwrapped env's, and that of each wrapper that
    holds some (frame stacking); None when the unwrapped env cannot resume mid-episode."""
    layers = _layers(env)
    get = _own(layers[-1], "episode_state")
    if get is None:
        return None
    wrappers = [[type(w).__name__, _own(w, "episode_state")()] for w in layers[:-1] if _own(w, "episode_state")]
    return {"env": get(), "wrappers": wrappers}


def restore_episode(env: gym.Env, state: dict | None) -> bool:
    """Put the env (and its wrappers) back into a saved episode; False when there is nothing to
    restore (the caller then starts a new episode). A ValueError when the saved wrappers are not
    this env's."""
    layers = _layers(env)
    put = _own(layers[-1], "restore_episode")
    if state is None or put is None:
        return False
    holders = [w for w in layers[:-1] if _own(w, "restore_episode")]
    names = [type(w).__name__ for w in holders]
    if names != [n for n, _ in state["wrappers"]]:
        raise ValueError(f"the saved episode was taken through wrappers {[n for n, _ in state['wrappers']]}, "
                         f"this env has {names}")
    env.reset()  # through the wrappers (gymnasium's order enforcing, time limits), then the saved episode
    put(state["env"])
    for w, (_, s) in zip(holders, state["wrappers"]):
        w.restore_episode(s)
    return True


def rng_state(gen: np.random.Generator | None) -> dict | None:
    """A numpy Generator's state as plain data (for `episode_state`)."""
    return None if gen is None else gen.bit_generator.state


def rng_from_state(state: dict | None) -> np.random.Generator | None:
    """A Generator continuing from `rng_state`'s data."""
    if state is None:
        return None
    gen = np.random.Generator(getattr(np.random, state["bit_generator"])())
    gen.bit_generator.state = state
    return gen
