"""The plain MLP, and the channel matching that gives exact and relaxed networks about the
parameters of a plain one (used by the network factory and the per-asset head alike)."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from torch import nn

from .exact import exact_param_count
from .gemm import mlp, mlp_per_run
from .relaxed import relaxed_param_count
from .reps import Rep, zero_of

#: input/output layers of the exact family: "frobenius" (default) or "escnn" (escnn.nn.Linear
#: itself, the reference; bench/bench_nets.py times both)
EXACT_LAYERS = "frobenius"


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
        # one autograd node by eqtrade.nn.gemm.mlp: oneDNN's products for the large layers, the
        # backward written out (nn.Linear's parameters and state-dict names kept; nn.Sequential's
        # result to rounding)
        return mlp(x, self.dense())

    def forward_state(self, t: dict, x: torch.Tensor, xlead: int = 0) -> torch.Tensor:
        """`forward` of the runs of a stack from their tensors `t` (net.i.weight [*L, out, in]):
        [*L, B, out] from x [*L, B, in] (xlead = len(L)) or [B, in] (xlead 0: shared by the runs);
        each run's products are the ones it computes alone."""
        return mlp_per_run(self.dense(t), x, xlead)

    def regularizer_state(self, t: dict, params, lead) -> torch.Tensor:
        """Each run's regulariser ([*lead]): zero."""
        return next(iter(t.values())).new_zeros(tuple(lead))

    @torch.no_grad()
    def zero_input_columns(self, cols) -> None:
        """Set the first layer's weights on inputs `cols` to zero (they then start unread)."""
        self.net[0].weight[:, list(cols)] = 0.0

    def dense(self, t: dict | None = None) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The layers as (weight [out, in], bias [out]) pairs, ReLU between them; t: parameters
        by name (a stack's, with leading run dimensions) instead of this network's own."""
        if t is None:
            return [(m.weight, m.bias) for m in self.net if isinstance(m, nn.Linear)]
        return [(t[f"net.{i}.weight"], t[f"net.{i}.bias"]) for i, m in enumerate(self.net) if isinstance(m, nn.Linear)]

    def regularizer(self) -> torch.Tensor:
        return zero_of(self)


def plain_param_count(in_dim: int, out_dim: int, hidden: Sequence[int]) -> int:
    dims = [in_dim, *hidden, out_dim]
    return sum(a * b + b for a, b in zip(dims[:-1], dims[1:]))


def matched_channels(family: str, in_rep: Rep, out_rep: Rep, hidden: Sequence[int], banks: int = 2,
                     target: int | None = None) -> tuple[int, ...]:
    """Regular-field channels per hidden layer whose parameter count is closest to `target`
    (default: a plain MLP of widths `hidden`); same shape, widths scaled by one factor."""
    if target is None:
        target = plain_param_count(in_rep.dim, out_rep.dim, hidden)
    count = (lambda ch: exact_param_count(in_rep, out_rep, ch)) if family == "exact" else (
        lambda ch: relaxed_param_count(in_rep, out_rep, ch, banks))
    best, best_err = None, math.inf
    for s in np.linspace(0.02, 1.5, 800):
        ch = tuple(max(1, int(round(s * h))) for h in hidden)
        err = abs(count(ch) - target) / target
        if err < best_err:
            best, best_err = ch, err
    return best
