"""Factory functions: (family, observation space, action space, Symmetry, sizes) -> the modules
that the agents need: a SAC actor, a SAC critic Q(s, a), and a DQN Q-network."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from ..symmetry import FAMILIES, ScaleAxis, Symmetry
from .exact import EscnnMLP, exact_param_count
from .relaxed import RelaxedMLP, relaxed_param_count
from . import mlp
from .asset import AssetwiseHead, asset_head
from .mlp import PlainMLP, matched_channels, plain_param_count  # noqa: F401  (re-exported)
from .conv import ConvEncoder1d
from .scale import scale_gain_for
from .reps import Rep, action_rep, obs_rep, regular_rep, sub_state, trivial_rep, zero_of

FAMILIES = FAMILIES  # re-exported: defined once, in eqtrade.symmetry


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


class Identity(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def regularizer(self) -> torch.Tensor:
        return zero_of(self)


def _networks(family, symmetry, obs_dim, extra_in, out_rep_fn, out_dim, hidden, channels, banks, encoder):
    """(encoder, head): the encoder maps the flat observation to features, the head maps
    [features, extra inputs] to the output. Equivariant families are matched in parameters
    to the plain network of the same widths."""
    enc_cfg = dict(encoder or {})
    kind = enc_cfg.pop("kind", None) if encoder else None
    if kind == "flat":  # TOML has no null: {kind = "flat"} asks for the MLP on the flat observation
        kind, encoder = None, None
    if kind not in (None, "conv1d"):
        raise ValueError(f"unknown encoder {kind!r}; use None (or 'flat'), 'conv1d' or 'per_asset'")
    if kind == "conv1d":
        window, n_series = enc_cfg.pop("window"), enc_cfg.pop("n_series")
        conv_ch = tuple(enc_cfg.pop("channels", (16, 16)))
        plain_enc = ConvEncoder1d("plain", None, window, n_series, conv_ch, **enc_cfg)
        plain_feat = plain_enc.out_fields + obs_dim - window * n_series
        target = param_count(plain_enc) + plain_param_count(plain_feat + extra_in[0], out_dim, hidden)
        if family != "plain":
            G = symmetry.order
            scale = math.sqrt(G * (banks if family == "relaxed" else 1))
            conv_ch = tuple(max(1, int(round(c / scale))) for c in conv_ch)
        enc = ConvEncoder1d(family, symmetry, window, n_series, conv_ch, banks=banks, **enc_cfg)
        if family == "plain":
            return enc, PlainMLP(plain_feat + extra_in[0], out_dim, hidden)
        in_rep = regular_rep(symmetry, enc.out_fields) + obs_rep(symmetry, start=window * n_series)
        target -= param_count(enc)
    else:
        enc, target = Identity(), None
        if family == "plain":
            return enc, PlainMLP(obs_dim + extra_in[0], out_dim, hidden)
        in_rep = obs_rep(symmetry)
    if extra_in[1] is not None:
        in_rep = in_rep + extra_in[1]()
    out_rep = out_rep_fn()
    ch = tuple(channels) if channels is not None else matched_channels(family, in_rep, out_rep, hidden, banks, target)
    head = (EscnnMLP(in_rep, out_rep, ch, layers=mlp.EXACT_LAYERS) if family == "exact"
            else RelaxedMLP(in_rep, out_rep, ch, banks=banks))
    return enc, head


class _Net(nn.Module):
    kind = ""

    def __init__(self, encoder: nn.Module, head: nn.Module, family: str, symmetry: Symmetry | None):
        super().__init__()
        self.encoder, self.head, self.family, self.symmetry = encoder, head, family, symmetry
        self.scale = None  # a relaxed return-scale axis: the gains its levels are read through (with_scale)

    def with_scale(self, axis: ScaleAxis | None, obs_dim: int) -> "_Net":
        """Read the volatility levels of a relaxed scale axis through gains that start at zero
        (eqtrade.nn.scale: the flat and conv encoders; a per-asset head reads them through its
        own first-layer weights instead, see asset_head); nothing for the exact and plain scale families."""
        self.scale = scale_gain_for(axis, obs_dim)
        return self

    @property
    def rows_input(self) -> bool:
        """Whether the network reads portfolio observations as rows [B, F, N] too (`as_rows`):
        a per-asset head (eqtrade.nn.asset) with no encoder in front."""
        return isinstance(self.head, AssetwiseHead) and isinstance(self.encoder, Identity) and self.scale is None

    @property
    def flat_plain(self) -> bool:
        """Whether this is a plain MLP on the flattened observation (no encoder, no scale gains)."""
        return isinstance(self.head, PlainMLP) and isinstance(self.encoder, Identity) and self.scale is None

    @property
    def native_stack(self) -> bool:
        """Whether the runs of a stack (and the twin critics) evaluate this network by
        `forward_state` on their stacked tensors rather than by a vmap over `forward`: the
        per-asset networks (`rows_input`: plain batched tensor code) and the flat plain MLPs
        (each run's products as it computes them alone: oneDNN's kernels, eqtrade.nn.gemm)."""
        flat = self.flat_plain and next(self.parameters()).device.type == "cpu"  # a GPU: vmap's batched products
        return (self.rows_input or flat) and type(self).forward_state is not _Net.forward_state

    def _in_state(self, obs: torch.Tensor, xlead: int) -> torch.Tensor:
        """A stack's observations as the head reads them (rows as they are; flat plain: flattened
        after the run and batch dimensions)."""
        if self.rows_input:
            return obs
        if not self.flat_plain:
            raise ValueError(f"{type(self).__name__}.forward_state reads per-asset rows or feeds a plain MLP the flat "
                             "observation; this network has an encoder or scale gains (vmap its forward)")
        return obs.flatten(xlead + 1)

    def forward_state(self, t: dict, *args, xlead: int = 0):
        """`forward` with the tensors `t` (parameters and buffers by name, with leading run
        dimensions L) in place of this network's own; inputs with the first `xlead` of L."""
        raise NotImplementedError(f"{type(self).__name__} has no forward on stacked tensors (vmap its forward)")

    def regularizer_state(self, t: dict, params, lead) -> torch.Tensor | None:
        """`regularizer` of each run ([*lead]) from stacked tensors (see `forward_state`);
        None where only a vmap of `regularizer` gives it."""
        if not self.native_stack:
            return None
        return self.head.regularizer_state(sub_state(t, "head."), [k.removeprefix("head.") for k in params if k.startswith("head.")], lead)

    def _in(self, obs: torch.Tensor) -> torch.Tensor:
        if self.rows_input:  # the head reads flat observations or rows
            return obs
        x = obs.flatten(1)
        return self.encoder(x if self.scale is None else self.scale(x))

    def regularizer(self) -> torch.Tensor:
        """The relaxed family's Σ_l Var_h w_l(h) over all layers (zero for plain and exact), plus
        the relaxed scale gains' Σ g²."""
        reg = self.encoder.regularizer() + self.head.regularizer()
        return reg if self.scale is None else reg + self.scale.regularizer()


class Actor(_Net):
    """SAC actor: obs -> (mean, log_std) of a tanh-Gaussian; mean transforms like the action, log_std is invariant."""

    kind = "actor"

    def __init__(self, encoder, head, family, symmetry, act_dim: int, log_std_bounds=(-5.0, 2.0)):
        super().__init__(encoder, head, family, symmetry)
        self.act_dim = act_dim
        self.log_std_min, self.log_std_max = log_std_bounds

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self._gaussian(self.head(self._in(obs)))

    def forward_state(self, t: dict, obs: torch.Tensor, xlead: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        return self._gaussian(self.head.forward_state(sub_state(t, "head."), self._in_state(obs, xlead), xlead=xlead))

    def _gaussian(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, raw = out[..., : self.act_dim], out[..., self.act_dim :]
        log_std = self.log_std_min + 0.5 * (self.log_std_max - self.log_std_min) * (torch.tanh(raw) + 1)
        return mean, log_std


class Critic(_Net):
    """SAC critic Q(s, a) -> [B, 1], invariant."""

    kind = "critic"

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        if self.rows_input:  # the per-asset head takes the action apart (no concatenated copy)
            return self.head(obs, action)
        return self.head(torch.cat([self._in(obs), action], dim=1))

    def forward_state(self, t: dict, obs: torch.Tensor, action: torch.Tensor, xlead: int = 0) -> torch.Tensor:
        if not self.rows_input:
            x = self._in_state(obs, xlead)
            return self.head.forward_state(sub_state(t, "head."), torch.cat([x, action], -1), xlead=xlead)
        return self.head.forward_state(sub_state(t, "head."), obs, action, xlead=xlead)


class Value(_Net):
    """State value V(s) -> [B, 1], invariant (the critic of SAC's exact-reward mode)."""

    kind = "value"

    def forward(self, obs: torch.Tensor, held: torch.Tensor | None = None) -> torch.Tensor:
        """V(obs); `held` [B, N]: the book in place of the observation's last row (per-asset
        networks only; see AssetwiseHead.forward)."""
        if held is not None:
            if not self.rows_input:
                raise ValueError("only a per-asset value network takes the held weights apart from the observation")
            return self.head(obs, held=held)
        return self.head(self._in(obs))

    def forward_state(self, t: dict, obs: torch.Tensor, held: torch.Tensor | None = None, xlead: int = 0) -> torch.Tensor:
        if not self.rows_input:
            if held is not None:
                raise ValueError("only a per-asset value network takes the held weights apart from the observation")
            x = self._in_state(obs, xlead)
            return self.head.forward_state(sub_state(t, "head."), x, xlead=xlead)
        return self.head.forward_state(sub_state(t, "head."), obs, held=held, xlead=xlead)


class QNet(_Net):
    """DQN Q-network obs -> Q-values [B, n_actions], permuted by the group like the actions."""

    kind = "qnet"

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.head(self._in(obs))


_SIZES_DOC = """
    hidden: widths of the plain MLP head; exact/relaxed get regular-field channels matched to
    its parameter count (within 10%) unless `channels` is given. banks: L of the relaxed layers.
    encoder: None or {"kind": "flat"} (MLP on the flat observation), {"kind": "conv1d", "window": W, "n_series": N,
    "channels": (16, 16), "kernel": 5, "stride": 2} for observations whose first W·N components
    are a time-major window of N series (time convolution, then the MLP head), or
    {"kind": "per_asset", "window": W, "n_assets": N} for portfolio observations [W·N returns,
    N weights]: one head of widths `hidden` shared by every asset (eqtrade.nn.asset), with optional
    "context": "none" | "mean" (market pooling), "assets": "exact" | "relaxed" (per-asset
    embeddings of "embed_dim", keyed by `tickers`, the env's asset names), "horizons" and "levels"
    (rows of horizon returns and volatility levels per asset, `eqtrade.envs.wrappers.MarketFeatures`).
    scale: the env's `ScaleAxis`; a relaxed one makes the network read its volatility levels
    through weights that start at zero: a per-asset head's own first-layer weights on them
    (`AssetwiseHead.level_columns`), else gains in front of the encoder (`eqtrade.nn.scale`)."""


PER_ASSET_KEYS = ("kind", "window", "n_assets", "context", "assets", "embed_dim", "horizons", "levels", "level_gain")


def _per_asset(encoder, tickers=None) -> dict | None:
    """The per-asset head's options from an encoder dict (None for other encoders)."""
    if encoder and encoder.get("kind") == "per_asset":
        extra = sorted(set(encoder) - set(PER_ASSET_KEYS))
        if extra or "window" not in encoder or "n_assets" not in encoder:
            raise ValueError("per_asset encoder takes window, n_assets, context, assets, embed_dim, horizons, levels "
                             f"and level_gain (got {dict(encoder)})")
        return dict(window=int(encoder["window"]), n_assets=int(encoder["n_assets"]),
                    context=str(encoder.get("context", "none")), assets=str(encoder.get("assets", "exact")),
                    embed_dim=int(encoder.get("embed_dim", 4)), tickers=tickers,
                    horizons=int(encoder.get("horizons", 0)), levels=int(encoder.get("levels", 0)),
                    level_gain=float(encoder.get("level_gain", 1.0)))
    return None


def _asset_head(family, pa: dict, outputs: str, with_action: bool, hidden, channels, banks, act_dim=None,
                scale: ScaleAxis | None = None):
    """The per-asset head; on a relaxed scale axis it reads the volatility levels through its own
    level weights, zero at the start (not through ScaleGain: see eqtrade.nn.scale)."""
    relaxed = scale is not None and scale.family == "relaxed"
    if relaxed and not pa["levels"]:
        raise ValueError("a relaxed scale axis needs volatility levels in the observation (MarketFeatures levels), "
                         "got a per-asset encoder with levels = 0")
    return asset_head(family, pa["window"], pa["n_assets"], outputs, with_action, hidden, channels, banks,
                      context=pa["context"], assets=pa["assets"], embed_dim=pa["embed_dim"], tickers=pa["tickers"],
                      horizons=pa["horizons"], levels=pa["levels"], cash=act_dim == pa["n_assets"] + 1,
                      relaxed_levels=relaxed, level_gain=pa["level_gain"])


def build_actor(family: str, observation_space, action_space, symmetry: Symmetry | None = None,
                hidden: Sequence[int] = (256, 256), channels: Sequence[int] | None = None, banks: int = 2,
                encoder: dict | None = None, log_std_bounds=(-5.0, 2.0), tickers=None, scale: ScaleAxis | None = None) -> Actor:
    """SAC actor of the given family."""
    obs_dim = _check(observation_space, symmetry, family, action_space)
    act_dim = int(np.prod(action_space.shape))
    if (pa := _per_asset(encoder, tickers)) is not None:
        _check_per_asset(obs_dim, act_dim, pa)
        head = _asset_head(family, pa, "actor", False, hidden, channels, banks, act_dim, scale)
        return Actor(Identity(), head, family, symmetry, act_dim, log_std_bounds)
    enc, head = _networks(family, symmetry, obs_dim, (0, None),
                          lambda: action_rep(symmetry) + trivial_rep(symmetry, act_dim), 2 * act_dim,
                          hidden, channels, banks, encoder)
    return Actor(enc, head, family, symmetry, act_dim, log_std_bounds).with_scale(scale, obs_dim)


def build_critic(family: str, observation_space, action_space, symmetry: Symmetry | None = None,
                 hidden: Sequence[int] = (256, 256), channels: Sequence[int] | None = None, banks: int = 2,
                 encoder: dict | None = None, tickers=None, scale: ScaleAxis | None = None) -> Critic:
    """SAC critic Q(s, a) of the given family (invariant under the symmetry)."""
    obs_dim = _check(observation_space, symmetry, family, action_space)
    act_dim = int(np.prod(action_space.shape))
    if (pa := _per_asset(encoder, tickers)) is not None:
        _check_per_asset(obs_dim, act_dim, pa)
        return Critic(Identity(), _asset_head(family, pa, "value", True, hidden, channels, banks, act_dim, scale),
                      family, symmetry)
    enc, head = _networks(family, symmetry, obs_dim, (act_dim, lambda: action_rep(symmetry)),
                          lambda: trivial_rep(symmetry, 1), 1, hidden, channels, banks, encoder)
    return Critic(enc, head, family, symmetry).with_scale(scale, obs_dim)


def build_value(family: str, observation_space, symmetry: Symmetry | None = None,
                hidden: Sequence[int] = (256, 256), channels: Sequence[int] | None = None, banks: int = 2,
                encoder: dict | None = None, tickers=None, scale: ScaleAxis | None = None) -> Value:
    """State value V(s) of the given family (invariant under the symmetry)."""
    obs_dim = _check(observation_space, symmetry, family)
    if (pa := _per_asset(encoder, tickers)) is not None:
        _check_per_asset(obs_dim, None, pa)
        return Value(Identity(), _asset_head(family, pa, "value", False, hidden, channels, banks, scale=scale),
                     family, symmetry)
    enc, head = _networks(family, symmetry, obs_dim, (0, None), lambda: trivial_rep(symmetry, 1), 1,
                          hidden, channels, banks, encoder)
    return Value(enc, head, family, symmetry).with_scale(scale, obs_dim)


def _check_per_asset(obs_dim: int, act_dim: int | None, pa: dict) -> None:
    window, n_assets = pa["window"], pa["n_assets"]
    rows = window + pa["horizons"] + pa["levels"] + 1
    if obs_dim != rows * n_assets:
        raise ValueError(f"per_asset encoder: {n_assets} assets x (window {window} + {pa['horizons']} horizons + "
                         f"{pa['levels']} levels + 1 weight) needs a {rows * n_assets}-dim observation, got {obs_dim}")
    if act_dim is not None and act_dim not in (n_assets, n_assets + 1):
        raise ValueError(f"per_asset encoder needs one action per asset ({n_assets}), and one for cash in a "
                         f"long-only book ({n_assets + 1}), got {act_dim}")


def build_qnet(family: str, observation_space, action_space, symmetry: Symmetry | None = None,
               hidden: Sequence[int] = (256, 256), channels: Sequence[int] | None = None, banks: int = 2,
               encoder: dict | None = None, scale: ScaleAxis | None = None) -> QNet:
    """DQN Q-network over a discrete action set (Q-vector permuted with the actions)."""
    if not isinstance(action_space, spaces.Discrete):
        raise ValueError(f"build_qnet needs a Discrete action space, got {action_space}")
    obs_dim = _check(observation_space, symmetry, family, action_space)
    enc, head = _networks(family, symmetry, obs_dim, (0, None), lambda: action_rep(symmetry),
                          int(action_space.n), hidden, channels, banks, encoder)
    return QNet(enc, head, family, symmetry).with_scale(scale, obs_dim)


for _f in (build_actor, build_critic, build_value, build_qnet):
    _f.__doc__ += _SIZES_DOC


def param_count(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def param_report(observation_space, action_space, symmetry: Symmetry, **sizes) -> dict[str, dict[str, int]]:
    """Parameter counts of every family's networks for one task: {family: {module: count}}."""
    out: dict[str, dict[str, int]] = {}
    for family in FAMILIES:
        if isinstance(action_space, spaces.Discrete):
            mods = {"qnet": build_qnet(family, observation_space, action_space, symmetry, **sizes)}
        else:
            mods = {"actor": build_actor(family, observation_space, action_space, symmetry, **sizes),
                    "critic": build_critic(family, observation_space, action_space, symmetry, **sizes)}
        out[family] = {k: param_count(m) for k, m in mods.items()}
    return out
