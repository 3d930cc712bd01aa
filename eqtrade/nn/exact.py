"""Exactly equivariant networks built with escnn: `no_base_space(G)` and `escnn.nn.Linear`
between regular hidden fields, with pointwise ReLU (equivariant on regular fields)."""

from __future__ import annotations

import warnings

import torch
from torch import nn

from .reps import Rep, hom_dim, trivial_rep


def _enn():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*py3nj.*")
        import escnn.nn as enn
        from escnn import gspaces
    return enn, gspaces


class EscnnMLP(nn.Module):
    """ρ_in -> C_1 .. C_k regular fields -> ρ_out, every map an escnn equivariant Linear."""

    def __init__(self, in_rep: Rep, out_rep: Rep, channels=(64, 64)):
        super().__init__()
        enn, gspaces = _enn()
        G = in_rep.symmetry.group
        gs = gspaces.no_base_space(G)
        self.in_type = enn.FieldType(gs, in_rep.escnn_fields())
        types = [enn.FieldType(gs, [G.regular_representation] * c) for c in channels]
        out_type = enn.FieldType(gs, out_rep.escnn_fields())
        layers = []
        prev = self.in_type
        for t in types:
            layers += [enn.Linear(prev, t), enn.ReLU(t, inplace=True)]
            prev = t
        layers.append(enn.Linear(prev, out_type))
        self.net = enn.SequentialModule(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        enn, _ = _enn()
        return self.net(enn.GeometricTensor(x, self.in_type)).tensor

    def regularizer(self) -> torch.Tensor:
        return torch.zeros(())


def exact_param_count(in_rep: Rep, out_rep: Rep, channels) -> int:
    """Parameters of EscnnMLP without building it: dim Hom_G of each map plus invariant biases."""
    G = in_rep.order
    n = channels[0] * in_rep.dim + channels[0]  # Hom(ρ_in, regular) ≅ ρ_in; one bias per regular field
    for a, b in zip(channels[:-1], channels[1:]):
        n += a * b * G + b
    return n + channels[-1] * out_rep.dim + hom_dim(trivial_rep(in_rep.symmetry, 1), out_rep)
