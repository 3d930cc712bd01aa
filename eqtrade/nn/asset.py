"""One small network shared by every asset of a portfolio (the per-asset backbone).

A portfolio observation is [W x N returns (time-major), N weights held]. The shared head reads
one asset's own window and its weight (and, for Q(s, a), its action) and gives that asset's
output: the actor's mean and log-std for that asset, or that asset's contribution to a critic,
summed over assets. The same weights for every asset make the networks exactly equivariant to
permuting assets and independent of N in size; daily returns are mostly noise, so this structure
(little capacity per asset, shared across assets) is what generalises.

The reflection families act on top, per asset: the head is plain, exact or relaxed with respect
to the single-asset reflection (returns, weight and action negate), so the whole network is
equivariant to the portfolio reflection exactly when the head is.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..symmetry import single_asset_reflection
from .reps import action_rep, obs_rep, trivial_rep


class AssetwiseHead(nn.Module):
    """[B, W·N + N (+ N actions)] -> per-asset outputs of one shared head.

    The head reads, per asset, [its W returns, N x its weight (, its action)].
    outputs="actor": [B, 2N] = (N means, N raw log-stds), the layout `Actor` splits;
    outputs="value": [B, 1], the sum over assets of the head's scalar (a critic V(s) or Q(s, a)).
    """

    def __init__(self, head: nn.Module, window: int, n_assets: int, with_action: bool, outputs: str):
        super().__init__()
        if outputs not in ("actor", "value"):
            raise ValueError(f"outputs must be 'actor' or 'value', got {outputs!r}")
        self.head, self.window, self.n_assets = head, int(window), int(n_assets)
        self.with_action, self.outputs = with_action, outputs

    def per_asset_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """[B, W·N + N (+ N)] -> [B, N, W + 1 (+ 1)]: each asset's window, weight (and action)."""
        B, W, N = x.shape[0], self.window, self.n_assets
        expected = W * N + N * (2 if self.with_action else 1)
        if x.shape[1] != expected:
            raise ValueError(f"per-asset network for {N} assets x window {W} expects {expected} inputs, got {x.shape[1]}")
        # weights are ~1/N each (gross <= 1): shown to the head as N·w, on the scale of the
        # normalised returns and of the action, so that the position is not drowned out
        parts = [x[:, : W * N].reshape(B, W, N).transpose(1, 2), N * x[:, W * N : W * N + N, None]]
        if self.with_action:
            parts.append(x[:, W * N + N :, None])
        return torch.cat(parts, dim=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N = x.shape[0], self.n_assets
        z = self.per_asset_inputs(x)
        out = self.head(z.reshape(B * N, -1)).reshape(B, N, -1)
        if self.outputs == "actor":
            return out.transpose(1, 2).reshape(B, -1)  # [means..., raw log-stds...]
        return out.sum(1)

    def regularizer(self) -> torch.Tensor:
        return self.head.regularizer()


def asset_head(family: str, window: int, n_assets: int, outputs: str, with_action: bool,
               hidden: Sequence[int], channels: Sequence[int] | None, banks: int) -> AssetwiseHead:
    """The shared per-asset head of a family (plain MLP, exact or relaxed w.r.t. the per-asset
    reflection); exact/relaxed channels matched in parameters to the plain head of widths `hidden`."""
    from .exact import EscnnMLP
    from .factory import EXACT_LAYERS, PlainMLP, matched_channels
    from .relaxed import RelaxedMLP

    n_in = window + 1 + (1 if with_action else 0)
    n_out = 2 if outputs == "actor" else 1
    if family == "plain":
        return AssetwiseHead(PlainMLP(n_in, n_out, hidden), window, n_assets, with_action, outputs)
    if not hidden:
        raise ValueError(f"the {family} family needs at least one hidden layer (regular fields); got hidden={list(hidden)}")
    sym = single_asset_reflection(window, extra_sign=1 + (1 if with_action else 0), discrete=False)
    in_rep = obs_rep(sym)
    out_rep = action_rep(sym) + trivial_rep(sym, 1) if outputs == "actor" else trivial_rep(sym, 1)
    ch = tuple(channels) if channels is not None else matched_channels(family, in_rep, out_rep, hidden, banks)
    head = (EscnnMLP(in_rep, out_rep, ch, layers=EXACT_LAYERS) if family == "exact"
            else RelaxedMLP(in_rep, out_rep, ch, banks=banks))
    return AssetwiseHead(head, window, n_assets, with_action, outputs)
