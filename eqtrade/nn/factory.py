"""Factory functions: (family, observation space, action space, Symmetry, sizes) -> the modules
that the agents need: a SAC actor, a SAC critic Q(s, a), and a DQN Q-network."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from ..symmetry import Symmetry
from .exact import EscnnMLP, exact_param_count
from .relaxed import RelaxedMLP, relaxed_param_count
from .reps import Rep, action_rep, obs_rep, trivial_rep

FAMILIES = ("plain", "exact", "relaxed")


class PlainMLP(nn.Module):
    """An ordinary MLP with ReLU."""

    def __init__(self, in_dim: int, out_dim: int, hidden: Sequence[int] = (256, 256)):
        super().__init__()
        dims = [in_dim, *hidden]
        layers: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        layers.append(nn.Linear(dims[-1], out_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def regularizer(self) -> torch.Tensor:
        return torch.zeros(())


def plain_param_count(in_dim: int, out_dim: int, hidden: Sequence[int]) -> int:
    dims = [in_dim, *hidden, out_dim]
    return sum(a * b + b for a, b in zip(dims[:-1], dims[1:]))


def matched_channels(family: str, in_rep: Rep, out_rep: Rep, hidden: Sequence[int], banks: int = 2) -> tuple[int, ...]:
    """Regular-field channels per hidden layer whose parameter count is closest to a plain MLP
    of widths `hidden` (same shape, widths scaled by one factor)."""
    target = plain_param_count(in_rep.dim, out_rep.dim, hidden)
    count = (lambda ch: exact_param_count(in_rep, out_rep, ch)) if family == "exact" else (
        lambda ch: relaxed_param_count(in_rep, out_rep, ch, banks))
    best, best_err = None, math.inf
    for s in np.linspace(0.05, 1.5, 600):
        ch = tuple(max(1, int(round(s * h))) for h in hidden)
        err = abs(count(ch) - target) / target
        if err < best_err:
            best, best_err = ch, err
    return best


def _check(obs_space, symmetry: Symmetry | None, family: str, action_space=None) -> int:
    if family not in FAMILIES:
        raise ValueError(f"unknown network family {family!r}; choose one of {', '.join(FAMILIES)}")
    obs_dim = int(np.prod(obs_space.shape))
    if family != "plain":
        if symmetry is None:
            raise ValueError(f"the {family!r} family needs a Symmetry (the env's `symmetry`)")
        if symmetry.obs_dim != obs_dim:
            raise ValueError(f"symmetry {symmetry.name} acts on {symmetry.obs_dim}-dim observations, "
                             f"the observation space has {obs_dim} (shape {obs_space.shape})")
        if action_space is not None:
            n = action_space.n if isinstance(action_space, spaces.Discrete) else int(np.prod(action_space.shape))
            if symmetry.action_dim != n:
                raise ValueError(f"symmetry {symmetry.name} acts on {symmetry.action_dim} actions, the action space has {n}")
    return obs_dim


def _body(family, in_rep_fn, out_rep_fn, in_dim, out_dim, hidden, channels, banks):
    if family == "plain":
        return PlainMLP(in_dim, out_dim, hidden)
    in_rep, out_rep = in_rep_fn(), out_rep_fn()
    ch = tuple(channels) if channels is not None else matched_channels(family, in_rep, out_rep, hidden, banks)
    if family == "exact":
        return EscnnMLP(in_rep, out_rep, ch)
    return RelaxedMLP(in_rep, out_rep, ch, banks=banks)


class _Net(nn.Module):
    kind = ""

    def __init__(self, body: nn.Module, family: str, symmetry: Symmetry | None):
        super().__init__()
        self.body, self.family, self.symmetry = body, family, symmetry

    def regularizer(self) -> torch.Tensor:
        """The relaxed family's Σ_l Var_h w_l(h) (zero for plain and exact)."""
        return self.body.regularizer()


class Actor(_Net):
    """SAC actor: obs -> (mean, log_std) of a tanh-Gaussian; mean transforms like the action, log_std is invariant."""

    kind = "actor"

    def __init__(self, body, family, symmetry, act_dim: int, log_std_bounds=(-5.0, 2.0)):
        super().__init__(body, family, symmetry)
        self.act_dim = act_dim
        self.log_std_min, self.log_std_max = log_std_bounds

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.body(obs.flatten(1))
        mean, raw = out[:, : self.act_dim], out[:, self.act_dim :]
        log_std = self.log_std_min + 0.5 * (self.log_std_max - self.log_std_min) * (torch.tanh(raw) + 1)
        return mean, log_std


class Critic(_Net):
    """SAC critic Q(s, a) -> [B, 1], invariant."""

    kind = "critic"

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.body(torch.cat([obs.flatten(1), action], dim=1))


class QNet(_Net):
    """DQN Q-network obs -> Q-values [B, n_actions], permuted by the group like the actions."""

    kind = "qnet"

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.body(obs.flatten(1))


def build_actor(family: str, observation_space, action_space, symmetry: Symmetry | None = None,
                hidden: Sequence[int] = (256, 256), channels: Sequence[int] | None = None, banks: int = 2,
                log_std_bounds=(-5.0, 2.0)) -> Actor:
    """SAC actor of the given family; equivariant families get channels matched to `hidden`'s parameter count."""
    obs_dim = _check(observation_space, symmetry, family, action_space)
    act_dim = int(np.prod(action_space.shape))
    body = _body(family, lambda: obs_rep(symmetry), lambda: action_rep(symmetry) + trivial_rep(symmetry, act_dim),
                 obs_dim, 2 * act_dim, hidden, channels, banks)
    return Actor(body, family, symmetry, act_dim, log_std_bounds)


def build_critic(family: str, observation_space, action_space, symmetry: Symmetry | None = None,
                 hidden: Sequence[int] = (256, 256), channels: Sequence[int] | None = None, banks: int = 2) -> Critic:
    """SAC critic Q(s, a) of the given family (invariant under the symmetry)."""
    obs_dim = _check(observation_space, symmetry, family, action_space)
    act_dim = int(np.prod(action_space.shape))
    body = _body(family, lambda: obs_rep(symmetry) + action_rep(symmetry), lambda: trivial_rep(symmetry, 1),
                 obs_dim + act_dim, 1, hidden, channels, banks)
    return Critic(body, family, symmetry)


def build_qnet(family: str, observation_space, action_space, symmetry: Symmetry | None = None,
               hidden: Sequence[int] = (256, 256), channels: Sequence[int] | None = None, banks: int = 2) -> QNet:
    """DQN Q-network over a discrete action set (Q-vector permuted with the actions)."""
    if not isinstance(action_space, spaces.Discrete):
        raise ValueError(f"build_qnet needs a Discrete action space, got {action_space}")
    obs_dim = _check(observation_space, symmetry, family, action_space)
    body = _body(family, lambda: obs_rep(symmetry), lambda: action_rep(symmetry), obs_dim, int(action_space.n),
                 hidden, channels, banks)
    return QNet(body, family, symmetry)


def param_count(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
