"""Representations as the networks need them: matrices per group element plus the escnn fields."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from torch import nn

from ..symmetry.core import Symmetry, block_diag


@dataclass(frozen=True, eq=False)
class Rep:
    """A representation of the symmetry's group: ρ(g) for every element (in `symmetry.elements`
    order) and a function giving the same representation as a list of escnn fields."""

    symmetry: Symmetry
    matrices: np.ndarray  # [|G|, d, d]
    fields: Callable[[], list]

    @property
    def dim(self) -> int:
        return self.matrices.shape[1]

    @property
    def order(self) -> int:
        return self.matrices.shape[0]

    def __add__(self, other: "Rep") -> "Rep":
        mats = np.stack([block_diag([a, b]) for a, b in zip(self.matrices, other.matrices)])
        return Rep(self.symmetry, mats, lambda: self.fields() + other.fields())

    def character(self) -> np.ndarray:
        return np.trace(self.matrices, axis1=1, axis2=2)

    def escnn_fields(self) -> list:
        """escnn representations, one per field, whose direct sum has exactly these matrices."""
        return self.fields()


def obs_rep(sym: Symmetry, start: int = 0) -> Rep:
    """The observation representation (from component `start` on, which must begin a field)."""
    mats = sym.obs_matrices()[:, start:, start:]

    def fields():
        out, dim = [], 0
        for f in sym.escnn_fields("obs"):
            if dim >= start:
                out.append(f)
            dim += f.size
        return out

    return Rep(sym, mats, fields)


def action_rep(sym: Symmetry) -> Rep:
    return Rep(sym, sym.action_matrices(), lambda: sym.escnn_fields("action"))


def trivial_rep(sym: Symmetry, n: int) -> Rep:
    return Rep(sym, np.broadcast_to(np.eye(n), (sym.order, n, n)).copy(),
               lambda: [sym.group.trivial_representation] * n)


def regular_rep(sym: Symmetry, n: int) -> Rep:
    """n regular fields: (λ(k) f)(g) = f(k⁻¹g), the convention of the relaxed layers."""
    table = sym.mult_table()  # [k, g] -> k⁻¹g
    G = table.shape[0]
    one = np.zeros((G, G, G))
    for k in range(G):
        one[k, np.arange(G), table[k]] = 1.0  # row g picks f(k⁻¹g)
    return Rep(sym, np.stack([np.kron(np.eye(n), m) for m in one]),
               lambda: [sym.group.regular_representation] * n)


def hom_dim(a: Rep, b: Rep) -> int:
    """dim Hom_G(a, b) = <χ_a, χ_b>: the number of free parameters of an equivariant linear map."""
    return int(round(float(np.mean(a.character() * b.character()))))


def zero_of(module) -> "torch.Tensor":
    """A scalar 0 on the module's device (a regulariser of a network without relaxed weights)."""
    import torch

    p = next(module.parameters(), None)
    return p.new_zeros(()) if p is not None else torch.zeros((), device="cpu")  # a CPU scalar adds to any device


def tensor_of(module, t: dict | None, prefix: str, name: str):
    """The module's own tensor `name`, or, given `t` (tensors by name, e.g. a stack's runs' with
    leading run dimensions), t[prefix + name]: the layers' `kernel`/`matrix`/`dense` read either."""
    return getattr(module, name) if t is None else t[prefix + name]


def sub_state(t: dict, prefix: str) -> dict:
    """The tensors of `t` under `prefix` ("head."), by their names relative to it."""
    return {k[len(prefix):]: v for k, v in t.items() if k.startswith(prefix)}



class MethodCall(nn.Module):
    """Calls a method of the wrapped module by name (so that functional_call can run any of them,
    with the module's tensors swapped in as "m." + name)."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.m = module

    def forward(self, method: str, *args, **kwargs):
        return getattr(self.m, method)(*args, **kwargs)
