"""Exactly equivariant networks built with escnn: `no_base_space(G)` and `escnn.nn.Linear`
between regular hidden fields, with pointwise ReLU (equivariant on regular fields).

Overhead removed (measured in bench/bench_nets.py): escnn wraps every activation in a
GeometricTensor and type-checks it, and its `generalized_he_init` loops over the basis in
Python (seconds for a 660-dim portfolio input). Here each escnn Linear only expands its
parameters in escnn's equivariant basis (`expand_parameters`), the forward is plain
`F.linear` + `relu`, and initialisation rescales random basis coefficients so the expanded
matrix has the same scale as a plain `nn.Linear`. In eval mode the expanded matrices are cached.
"""

from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from .reps import Rep, hom_dim, trivial_rep


def _enn():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*py3nj.*")
        import escnn.nn as enn
        from escnn import gspaces
    return enn, gspaces


@torch.no_grad()
def _init_like_plain(layer) -> None:
    """Random basis coefficients scaled so the expanded matrix has std 1/sqrt(3 fan_in), like nn.Linear."""
    layer.weights.normal_()
    W, _ = layer.expand_parameters()
    fan_in = W.shape[1]
    layer.weights.mul_(1.0 / math.sqrt(3 * fan_in) / W.std().clamp_min(1e-12))
    if layer.bias is not None:
        layer.bias.uniform_(-1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))


class EscnnMLP(nn.Module):
    """ρ_in -> C_1 .. C_k regular fields -> ρ_out, every map an escnn equivariant Linear."""

    def __init__(self, in_rep: Rep, out_rep: Rep, channels=(64, 64)):
        super().__init__()
        enn, gspaces = _enn()
        G = in_rep.symmetry.group
        gs = gspaces.no_base_space(G)
        types = [enn.FieldType(gs, in_rep.escnn_fields())]
        types += [enn.FieldType(gs, [G.regular_representation] * c) for c in channels]
        types.append(enn.FieldType(gs, out_rep.escnn_fields()))
        self.in_type, self.out_type = types[0], types[-1]
        self.linears = nn.ModuleList(enn.Linear(a, b, initialize=False) for a, b in zip(types[:-1], types[1:]))
        for lin in self.linears:
            _init_like_plain(lin)
        self._cache: list | None = None

    def train(self, mode: bool = True):
        # escnn's Linear registers extra buffers in eval mode, which changes the state_dict;
        # keep the escnn layers in one mode and cache the expanded matrices here instead.
        self.training = mode
        self._cache = None if mode else [lin.expand_parameters() for lin in self.linears]
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        params = self._cache if self._cache is not None else [lin.expand_parameters() for lin in self.linears]
        h = x
        for i, (W, b) in enumerate(params):
            h = F.linear(h, W, b)
            if i < len(params) - 1:
                h = torch.relu(h)
        return h

    def regularizer(self) -> torch.Tensor:
        return torch.zeros(())


def exact_param_count(in_rep: Rep, out_rep: Rep, channels) -> int:
    """Parameters of EscnnMLP without building it: dim Hom_G of each map plus invariant biases."""
    G = in_rep.order
    n = channels[0] * in_rep.dim + channels[0]  # Hom(ρ_in, regular) ≅ ρ_in; one bias per regular field
    for a, b in zip(channels[:-1], channels[1:]):
        n += a * b * G + b
    return n + channels[-1] * out_rep.dim + hom_dim(trivial_rep(in_rep.symmetry, 1), out_rep)
