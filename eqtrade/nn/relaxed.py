"""Relaxed group convolutions (Wang, Walters & Yu, ICML 2022) for a finite group G.

Features are regular fields: tensors [..., C, |G|] (a function on G per channel). A relaxed layer
keeps L kernels ψ_1..ψ_L and relaxed weights w_l(h), one per bank and group element:

    (f ⋆̃ Ψ)(g) = Σ_h f(h) Σ_l w_l(h) ψ_l(g⁻¹h)

When w_l(h) does not depend on h the layer is exactly equivariant. Weights start uniform, so a
relaxed network starts exactly equivariant; `regularizer()` = Σ_l Var_h w_l(h) is zero exactly
when they are uniform. With `relaxed=False` the weights are fixed uniform: an exact group
convolution (used for the time axis, where escnn has no 1-D base space).

Every layer assembles one dense kernel from its parameters per forward and applies a single
matmul (or conv), so the cost over a plain layer of the same width is one small einsum.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .reps import Rep


class _Relaxed(nn.Module):
    """Holds the relaxed weights w [L, |G|] (or a fixed uniform buffer when not relaxed)."""

    def _init_weights(self, banks: int, order: int, relaxed: bool) -> None:
        w = torch.full((banks, order), 1.0 / banks)
        if relaxed:
            self.relaxed_weights = nn.Parameter(w)
        else:
            self.register_buffer("relaxed_weights", w)
        self.relaxed = relaxed

    def regularizer(self) -> torch.Tensor:
        """Σ_l Var_h w_l(h): zero iff the layer is exactly equivariant."""
        w = self.relaxed_weights
        return w.var(dim=1, unbiased=False).sum()


class RelaxedLift(_Relaxed):
    """Input representation ρ_in (dim d) -> C regular fields: out(g) = Σ_l w_l(g) ψ_l ρ_in(g⁻¹) x."""

    def __init__(self, rep: Rep, channels: int, banks: int = 2, relaxed: bool = True):
        super().__init__()
        G, d = rep.order, rep.dim
        inv_idx = rep.symmetry.mult_table()[:, 0]  # g⁻¹ · e = g⁻¹
        rho_inv = torch.as_tensor(rep.matrices[inv_idx], dtype=torch.float32)  # ρ(g⁻¹)
        # sign/trivial inputs (all trading symmetries) have diagonal ρ: keep only the diagonal,
        # which turns a [G, d, d] contraction (d = 660 for 20 assets x 32 days) into a product.
        self.diagonal = bool((rho_inv == torch.diag_embed(torch.diagonal(rho_inv, dim1=1, dim2=2))).all())
        self.register_buffer("rho_inv", torch.diagonal(rho_inv, dim1=1, dim2=2).clone() if self.diagonal else rho_inv)
        bound = math.sqrt(banks / d)  # the bank average then has nn.Linear's scale
        self.psi = nn.Parameter(torch.empty(banks, channels, d).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(channels).uniform_(-1 / math.sqrt(d), 1 / math.sqrt(d)))
        self._init_weights(banks, G, relaxed)
        self.channels, self.order = channels, G

    def kernel(self) -> torch.Tensor:
        if self.diagonal:
            k = torch.einsum("lg,lcd->cgd", self.relaxed_weights, self.psi) * self.rho_inv
        else:
            k = torch.einsum("lg,lcd,gde->cge", self.relaxed_weights, self.psi, self.rho_inv)
        return k.reshape(self.channels * self.order, -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.kernel(), self.bias.repeat_interleave(self.order))


class RelaxedGroupLinear(_Relaxed):
    """C_in regular fields -> C_out regular fields: the relaxed group convolution above."""

    def __init__(self, symmetry, in_channels: int, out_channels: int, banks: int = 2, relaxed: bool = True):
        super().__init__()
        table = torch.as_tensor(symmetry.mult_table())  # [g, h] -> g⁻¹h
        G = table.shape[0]
        # onehot[g, h, k] = 1 where g⁻¹h = k: the kernel is then one matmul of a tiny [G², L·G]
        # mixing matrix with the banks (no gather, whose backward is a slow scatter)
        self.register_buffer("onehot", F.one_hot(table, G).float())
        bound = math.sqrt(banks / (in_channels * G))
        self.psi = nn.Parameter(torch.empty(banks, G, out_channels, in_channels).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(out_channels).uniform_(-bound, bound) / math.sqrt(banks))
        self._init_weights(banks, G, relaxed)
        self.cin, self.cout, self.order, self.banks = in_channels, out_channels, G, banks

    def kernel(self) -> torch.Tensor:
        G, L = self.order, self.banks
        # mix[(g, h), (l, k)] = w_l(h) [g⁻¹h = k];  K[g, h] = Σ_l w_l(h) ψ_l(g⁻¹h)
        mix = torch.einsum("lh,ghk->ghlk", self.relaxed_weights, self.onehot).reshape(G * G, L * G)
        k = (mix @ self.psi.reshape(L * G, -1)).view(G, G, self.cout, self.cin)
        return k.permute(2, 0, 3, 1).reshape(self.cout * G, self.cin * G)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.kernel(), self.bias.repeat_interleave(self.order))


class RelaxedProject(_Relaxed):
    """C regular fields -> output representation ρ_out: y = Σ_g ρ_out(g) Σ_l w_l(g) A_l f(g) + P_inv b."""

    def __init__(self, rep: Rep, in_channels: int, banks: int = 2, relaxed: bool = True):
        super().__init__()
        G, d = rep.order, rep.dim
        rho = torch.as_tensor(rep.matrices, dtype=torch.float32)
        self.register_buffer("rho", rho)
        self.register_buffer("p_inv", rho.mean(0))  # projector onto the invariant subspace
        bound = math.sqrt(banks / (in_channels * G))
        self.A = nn.Parameter(torch.empty(banks, d, in_channels).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.zeros(d))
        self._init_weights(banks, G, relaxed)
        self.cin, self.order = in_channels, G

    def kernel(self) -> torch.Tensor:
        k = torch.einsum("lg,gij,ljc->icg", self.relaxed_weights, self.rho, self.A)
        return k.reshape(k.shape[0], self.cin * self.order)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.kernel(), self.p_inv @ self.bias)


class RelaxedMLP(nn.Module):
    """ρ_in -> regular fields (hidden channels) -> ρ_out with ReLU, every layer relaxed (or exact)."""

    def __init__(self, in_rep: Rep, out_rep: Rep, channels=(64, 64), banks: int = 2, relaxed: bool = True):
        super().__init__()
        sym = in_rep.symmetry
        layers: list[nn.Module] = [RelaxedLift(in_rep, channels[0], banks, relaxed), nn.ReLU()]
        for a, b in zip(channels[:-1], channels[1:]):
            layers += [RelaxedGroupLinear(sym, a, b, banks, relaxed), nn.ReLU()]
        layers.append(RelaxedProject(out_rep, channels[-1], banks, relaxed))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def regularizer(self) -> torch.Tensor:
        return sum((m.regularizer() for m in self.modules() if isinstance(m, _Relaxed)), torch.zeros(()))


def relaxed_param_count(in_rep: Rep, out_rep: Rep, channels, banks: int) -> int:
    """Parameters of RelaxedMLP without building it."""
    G = in_rep.order
    n = banks * channels[0] * in_rep.dim + channels[0] + banks * G
    for a, b in zip(channels[:-1], channels[1:]):
        n += banks * G * a * b + b + banks * G
    return n + banks * out_rep.dim * channels[-1] + out_rep.dim + banks * G
