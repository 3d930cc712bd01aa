"""Encoders over the time axis of a window of returns: [B, W, N] (time-major in the flat
observation) with the group acting on the N series by ρ_ch. Convolution over time makes the
encoder time-translation equivariant; the group acts on the channels.

- plain: Conv1d stack.
- relaxed: relaxed lifting / group convolutions over time (kernels with a time extent).
- exact: each kernel tap is an `escnn.nn.Linear` map in escnn's equivariant basis (escnn has no
  1-D base space; a time convolution whose every tap is G-equivariant is G-equivariant).

All three output feature maps [B, C', T'] that are flattened for the MLP head; for the
equivariant families C' = C·|G| regular fields.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..symmetry import Symmetry
from .exact import escnn_nn, init_like_plain
from .relaxed import RelaxedModule
from .reps import zero_of


def window_channel_rep(symmetry: Symmetry, window: int, n_series: int) -> np.ndarray:
    """ρ_ch [|G|, N, N] of the series if the symmetry acts on the flat window as I_W ⊗ ρ_ch; else raise."""
    mats = symmetry.obs_matrices()
    k = window * n_series
    win = mats[:, :k, :k]
    ch = win[:, :n_series, :n_series]
    expected = np.stack([np.kron(np.eye(window), c) for c in ch])
    if not np.allclose(win, expected) or not np.allclose(mats[:, :k, k:], 0) or not np.allclose(mats[:, k:, :k], 0):
        raise ValueError(
            f"symmetry {symmetry.name} does not act on the first {window}x{n_series} observation components "
            "as the same representation on every day of the window (needed by a time convolution)"
        )
    return ch


def out_length(window: int, kernel: int, stride: int, layers: int) -> int:
    t = window
    for _ in range(layers):
        t = (t - kernel) // stride + 1
    if t < 1:
        raise ValueError(f"window {window} is too short for {layers} conv layers of kernel {kernel}, stride {stride}")
    return t


class RelaxedLiftConv1d(RelaxedModule):
    """Series with ρ_ch -> C regular fields over time: out(g) = Σ_l w_l(g) ψ_l ⋆ (ρ_ch(g⁻¹) x)."""

    def __init__(self, symmetry: Symmetry, rho_ch: np.ndarray, channels: int, kernel: int, stride: int = 1,
                 banks: int = 2, relaxed: bool = True):
        super().__init__()
        G, n = rho_ch.shape[0], rho_ch.shape[1]
        inv = symmetry.mult_table()[:, 0]
        self.register_buffer("rho_inv", torch.as_tensor(rho_ch[inv], dtype=torch.float32))
        bound = math.sqrt(banks / (n * kernel))
        self.psi = nn.Parameter(torch.empty(banks, channels, n, kernel).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(channels).uniform_(-1, 1) / math.sqrt(n * kernel))
        self._init_weights(banks, G, relaxed)
        self.channels, self.order, self.stride = channels, G, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x [B, N, T]
        k = torch.einsum("lg,lcdt,gde->cget", self.relaxed_weights, self.psi, self.rho_inv)
        k = k.reshape(self.channels * self.order, k.shape[2], k.shape[3])
        return F.conv1d(x, k, self.bias.repeat_interleave(self.order), stride=self.stride)


class RelaxedGroupConv1d(RelaxedModule):
    """C_in -> C_out regular fields over time: K[g, h](τ) = Σ_l w_l(h) ψ_l(g⁻¹h)(τ)."""

    def __init__(self, symmetry: Symmetry, in_channels: int, out_channels: int, kernel: int, stride: int = 1,
                 banks: int = 2, relaxed: bool = True):
        super().__init__()
        table = torch.as_tensor(symmetry.mult_table())
        G = table.shape[0]
        self.register_buffer("onehot", F.one_hot(table, G).float())
        bound = math.sqrt(banks / (in_channels * G * kernel))
        self.psi = nn.Parameter(torch.empty(banks, G, out_channels, in_channels, kernel).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(out_channels).uniform_(-1, 1) / math.sqrt(in_channels * G * kernel))
        self._init_weights(banks, G, relaxed)
        self.cin, self.cout, self.order, self.banks, self.kernel, self.stride = in_channels, out_channels, G, banks, kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        G, L = self.order, self.banks
        mix = torch.einsum("lh,ghk->ghlk", self.relaxed_weights, self.onehot).reshape(G * G, L * G)
        k = (mix @ self.psi.reshape(L * G, -1)).view(G, G, self.cout, self.cin, self.kernel)
        k = k.permute(2, 0, 3, 1, 4).reshape(self.cout * G, self.cin * G, self.kernel)
        return F.conv1d(x, k, self.bias.repeat_interleave(G), stride=self.stride)


class EscnnConv1d(nn.Module):
    """Exact G-equivariant time convolution: one escnn.nn.Linear (in escnn's basis) per kernel tap."""

    def __init__(self, in_type, out_type, kernel: int, stride: int = 1):
        super().__init__()
        enn, _ = escnn_nn()
        self.taps = nn.ModuleList(enn.Linear(in_type, out_type, bias=(t == 0), initialize=False) for t in range(kernel))
        for lin in self.taps:
            init_like_plain(lin)
            lin.weights.data /= math.sqrt(kernel)  # fan-in grows with the taps
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mats = [lin.expand_parameters() for lin in self.taps]
        k = torch.stack([W for W, _ in mats], dim=-1)
        return F.conv1d(x, k, mats[0][1], stride=self.stride)


class ConvEncoder1d(nn.Module):
    """Flat obs [B, W·N + extra] -> [window features (flattened), extra]; see module docstring."""

    def __init__(self, family: str, symmetry: Symmetry | None, window: int, n_series: int,
                 channels=(16, 16), kernel: int = 5, stride: int = 2, banks: int = 2):
        super().__init__()
        self.window, self.n_series, self.family = window, n_series, family
        self.t_out = out_length(window, kernel, stride, len(channels))
        layers: list[nn.Module] = []
        if family == "plain":
            dims = [n_series, *channels]
            for a, b in zip(dims[:-1], dims[1:]):
                layers += [nn.Conv1d(a, b, kernel, stride=stride), nn.ReLU()]
            self.out_fields = channels[-1] * self.t_out  # plain features
        else:
            rho = window_channel_rep(symmetry, window, n_series)
            if family == "relaxed":
                layers += [RelaxedLiftConv1d(symmetry, rho, channels[0], kernel, stride, banks), nn.ReLU()]
                for a, b in zip(channels[:-1], channels[1:]):
                    layers += [RelaxedGroupConv1d(symmetry, a, b, kernel, stride, banks), nn.ReLU()]
            elif family == "exact":
                enn, gspaces = escnn_nn()
                G = symmetry.group
                gs = gspaces.no_base_space(G)
                fields = symmetry.escnn_fields("obs")[: n_series]  # the first day's series
                types = [enn.FieldType(gs, fields)] + [enn.FieldType(gs, [G.regular_representation] * c) for c in channels]
                for a, b in zip(types[:-1], types[1:]):
                    layers += [EscnnConv1d(a, b, kernel, stride), nn.ReLU()]
            else:
                raise ValueError(f"unknown network family {family!r}")
            self.out_fields = channels[-1] * self.t_out  # regular fields
        self.net = nn.Sequential(*layers)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        k = self.window * self.n_series
        win = obs[:, :k].view(-1, self.window, self.n_series).transpose(1, 2)  # [B, N, W]
        feats = self.net(win)  # [B, C·|G| (channel-major), T']
        # time-major then (channel, group): the flat layout is C·T' regular fields for the head
        return torch.cat([feats.transpose(1, 2).reshape(obs.shape[0], -1), obs[:, k:]], dim=1)

    def feature_map(self, obs: torch.Tensor) -> torch.Tensor:
        """The conv features [B, C', T'] before flattening (time-translation equivariant)."""
        k = self.window * self.n_series
        return self.net(obs[:, :k].view(-1, self.window, self.n_series).transpose(1, 2))

    def regularizer(self) -> torch.Tensor:
        return sum((m.regularizer() for m in self.modules() if isinstance(m, RelaxedModule)), zero_of(self))
