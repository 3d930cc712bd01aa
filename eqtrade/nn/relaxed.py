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

from .gemm import linear
from .reps import Rep, tensor_of, zero_of


class RelaxedModule(nn.Module):
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


class RelaxedLift(RelaxedModule):
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

    def kernel(self, t: dict | None = None, prefix: str = "") -> torch.Tensor:
        """The dense kernel [C·G, d]; given `t` (see `reps.tensor_of`), from its tensors, with their
        leading dimensions: [..., C·G, d]."""
        w, psi, rho_inv = (tensor_of(self, t, prefix, n) for n in ("relaxed_weights", "psi", "rho_inv"))
        if self.diagonal:
            k = torch.einsum("...lg,...lcd->...cgd", w, psi) * rho_inv.unsqueeze(-3)
        else:
            k = torch.einsum("...lg,...lcd,...gde->...cge", w, psi, rho_inv)
        return k.flatten(-3, -2)

    def kernel_bias(self, t: dict | None = None, prefix: str = "") -> tuple[torch.Tensor, torch.Tensor]:
        return self.kernel(t, prefix), tensor_of(self, t, prefix, "bias").repeat_interleave(self.order, dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(x, *self.kernel_bias())

    def forward_gm(self, x: torch.Tensor) -> torch.Tensor:
        """[N, d] -> group-major [G, N, C] (the layout RelaxedMLP keeps between layers)."""
        if self.diagonal:
            k = torch.einsum("lg,lcd->gdc", self.relaxed_weights, self.psi) * self.rho_inv[:, :, None]
        else:
            k = torch.einsum("lg,lcd,gde->gec", self.relaxed_weights, self.psi, self.rho_inv)
        return torch.baddbmm(self.bias.expand(self.order, 1, self.channels), x.expand(self.order, *x.shape), k)


class RelaxedGroupLinear(RelaxedModule):
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
        self._fourier_setup(symmetry)

    def _fourier_setup(self, symmetry) -> None:
        """The layer as L exact group convolutions of reweighted inputs,
            (f ⋆̃ Ψ)(g) = Σ_l Σ_h ψ_l(g⁻¹h) [w_l(h) f(h)],
        each block diagonal in the Fourier basis of the regular representation. Finds the fixed
        linear map `coef` from a spatial kernel ψ(k) to its Fourier blocks (exact: checked)."""
        from .exact import fourier_structure, regular_slot_order

        Qo, blocks = fourier_structure(symmetry.group)
        Q = Qo[regular_slot_order(symmetry.group)].double()  # rows in this layer's element order
        G = Q.shape[0]
        units, f = [], 0  # one block-diagonal unit matrix per Fourier parameter
        for d, m, cplx in blocks:
            if cplx:
                for pat in ([[1.0, 0.0], [0.0, 1.0]], [[0.0, -1.0], [1.0, 0.0]]):
                    B = torch.zeros(G, G, dtype=torch.float64)
                    B[f:f + 2, f:f + 2] = torch.tensor(pat, dtype=torch.float64)
                    units.append(B)
            else:
                for p in range(m):
                    for q in range(m):
                        B = torch.zeros(G, G, dtype=torch.float64)
                        for comp in range(d):
                            B[f + p * d + comp, f + q * d + comp] = 1.0
                        units.append(B)
            f += m * d
        E = torch.stack([(Q @ B @ Q.T).reshape(-1) for B in units], dim=1)  # [G², P]
        table = torch.as_tensor(symmetry.mult_table())
        P = torch.stack([(table == k).double().reshape(-1) for k in range(G)], dim=1)  # [G², G]
        coef = torch.linalg.lstsq(E, P).solution  # [P, G]
        if (E @ coef - P).abs().max() > 1e-5:  # Q is float32
            raise AssertionError("the regular representation's Fourier basis does not diagonalise the group convolution")
        self.register_buffer("fourier_q", Q.float().contiguous(), persistent=False)
        self.register_buffer("fourier_coef", coef.float().contiguous(), persistent=False)
        self.fourier_blocks = blocks

    def fourier_weights(self) -> list[torch.Tensor]:
        """Per Fourier block, the weights of Σ_l ψ_l over input channels folded as (l, c)."""
        L, C, Co = self.banks, self.cin, self.cout
        Wk = torch.einsum("pk,lkoc->polc", self.fourier_coef, self.psi)  # [P, C_out, L, C_in]
        sizes = [2 if cplx else m * m for d, m, cplx in self.fourier_blocks]
        out = []
        for (d, m, cplx), w in zip(self.fourier_blocks, Wk.split(sizes)):  # split: cheap backward
            if cplx:
                out.append(w.reshape(2, Co, L * C))
            elif m == 1:
                out.append(w.reshape(Co, L * C))
            else:  # A[p, q] -> rows (o, p), columns (l, c, q)
                out.append(w.view(m, m, Co, L, C).permute(2, 0, 3, 4, 1).reshape(Co * m, L * C * m))
        return out

    def forward_gm(self, x: torch.Tensor) -> torch.Tensor:
        """Group-major [G, N, C_in] -> [G, N, C_out], in the Fourier basis: the matmuls cost
        Σ_ψ (blocks) ~ the FLOPs of a plain layer with the same parameter count, instead of the
        |G|/L times more of the dense [C_out·G, C_in·G] kernel."""
        from .exact import fourier_blocks_gm

        G, N, C = x.shape
        xw = x.unsqueeze(2) * self.relaxed_weights.T[:, None, :, None]  # [G, N, L, C]: w_l(h) f(h)
        xf = (self.fourier_q.T @ xw.reshape(G, -1)).view(G, N, self.banks * C)
        of = fourier_blocks_gm(xf, self.fourier_blocks, self.fourier_weights(), self.banks * C, self.cout)
        return (self.fourier_q @ of.reshape(G, -1)).view(G, N, self.cout) + self.bias

    def kernel(self, t: dict | None = None, prefix: str = "") -> torch.Tensor:
        """The dense kernel [C_out·G, C_in·G] (given `t`: [..., C_out·G, C_in·G], see `reps.tensor_of`)."""
        G, L = self.order, self.banks
        w, onehot, psi = (tensor_of(self, t, prefix, n) for n in ("relaxed_weights", "onehot", "psi"))
        lead = w.shape[:-2]
        # mix[(g, h), (l, k)] = w_l(h) [g⁻¹h = k];  K[g, h] = Σ_l w_l(h) ψ_l(g⁻¹h)
        mix = torch.einsum("...lh,...ghk->...ghlk", w, onehot).reshape(*lead, G * G, L * G)
        k = (mix @ psi.reshape(*lead, L * G, -1)).view(*lead, G, G, self.cout, self.cin)
        n = len(lead)
        return k.permute(*range(n), n + 2, n, n + 3, n + 1).reshape(*lead, self.cout * G, self.cin * G)

    def kernel_bias(self, t: dict | None = None, prefix: str = "") -> tuple[torch.Tensor, torch.Tensor]:
        return self.kernel(t, prefix), tensor_of(self, t, prefix, "bias").repeat_interleave(self.order, dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(x, *self.kernel_bias())


class RelaxedProject(RelaxedModule):
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

    def kernel(self, t: dict | None = None, prefix: str = "") -> torch.Tensor:
        """The dense kernel [d, C·G] (given `t`: [..., d, C·G], see `reps.tensor_of`)."""
        w, rho, A = (tensor_of(self, t, prefix, n) for n in ("relaxed_weights", "rho", "A"))
        k = torch.einsum("...lg,...gij,...ljc->...icg", w, rho, A)
        return k.flatten(-2)

    def kernel_bias(self, t: dict | None = None, prefix: str = "") -> tuple[torch.Tensor, torch.Tensor]:
        p_inv, bias = tensor_of(self, t, prefix, "p_inv"), tensor_of(self, t, prefix, "bias")
        return self.kernel(t, prefix), p_inv @ bias if bias.dim() == 1 else (p_inv @ bias[..., None])[..., 0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(x, *self.kernel_bias())

    def forward_gm(self, h: torch.Tensor) -> torch.Tensor:
        """Group-major [G, N, C] -> [N, d]: Σ_g h_g @ K_gᵀ with K_g = ρ(g) Σ_l w_l(g) A_l."""
        k = torch.einsum("lg,gij,ljc->gci", self.relaxed_weights, self.rho, self.A)
        return torch.bmm(h, k).sum(0) + self.p_inv @ self.bias


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
        # Two computations of the same function: dense kernels (channel-major; its matmuls cost
        # |G|/L times a plain layer's at matched parameters) or the Fourier path (group-major;
        # ~ plain FLOPs but more, smaller ops). bench/bench_nets.py times both ("relaxed-other"):
        # with 2 banks the dense one is faster for C2, about even for C4, the Fourier one faster
        # for D4 (|G|/L = 4: 3.4-3.7x plain against 4.2-4.4x).
        self.fourier = sym.order / banks >= 4 and len(channels) > 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.fourier:
            return self.net(x)
        # group-major features [G, N, C] between layers (see RelaxedGroupLinear.forward_gm)
        mods = list(self.net)  # lift, ReLU, (group linear, ReLU)*, project
        h = torch.relu(mods[0].forward_gm(x))
        for layer in mods[2:-1:2]:
            h = torch.relu(layer.forward_gm(h))
        return mods[-1].forward_gm(h)

    @torch.no_grad()
    def zero_input_columns(self, cols) -> None:
        """Set the lift's kernels on inputs `cols` to zero in every bank (they then start unread)."""
        self.net[0].psi[:, :, list(cols)] = 0.0

    def dense(self, t: dict | None = None) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The same function as (weight [out, in], bias [out]) pairs with ReLU between them, on
        channel-major features (the dense kernels of every layer, assembled from the parameters).
        t: this network's parameters and buffers by name (a stack's, with leading run
        dimensions: weights [..., out, in], biases [..., out]) instead of its own."""
        return [m.kernel_bias(t, f"net.{i}.") for i, m in enumerate(self.net) if isinstance(m, RelaxedModule)]

    def regularizer(self) -> torch.Tensor:
        return sum((m.regularizer() for m in self.modules() if isinstance(m, RelaxedModule)), zero_of(self))


def relaxed_param_count(in_rep: Rep, out_rep: Rep, channels, banks: int) -> int:
    """Parameters of RelaxedMLP without building it."""
    G = in_rep.order
    n = banks * channels[0] * in_rep.dim + channels[0] + banks * G
    for a, b in zip(channels[:-1], channels[1:]):
        n += banks * G * a * b + b + banks * G
    return n + banks * out_rep.dim * channels[-1] + out_rep.dim + banks * G
