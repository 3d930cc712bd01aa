"""Exactly equivariant networks built with escnn on `no_base_space(G)`: regular hidden fields
with pointwise ReLU (equivariant on regular fields).

- The input layer (ρ_obs -> regular fields) and the output layer (regular fields -> ρ_out) span
  the same spaces as `escnn.nn.Linear` between those escnn field types, parametrised by
  Frobenius reciprocity (one vector per regular field) so that the forward is one plain matmul
  (`RegularLift`, `RegularProject`; `layers="escnn"` uses escnn.nn.Linear itself).
- Hidden layers (regular -> regular fields) are group convolutions computed in the Fourier
  basis of escnn's regular representation (its irreps and change of basis): there every
  equivariant map is block diagonal by irrep (Schur), so the layer costs Σ_ψ d_ψ³ C² instead
  of the |G|² C² of escnn's dense expanded matrix — at matched parameter counts this is what
  keeps the exact family near plain speed. It spans exactly the space escnn.nn.Linear spans
  (same dimension, tested), so it is the same model with a cheaper forward.

Other overhead removed (measured in bench/bench_nets.py): escnn wraps every activation in a
GeometricTensor and type-checks it, and its `generalized_he_init` loops over the basis in
Python (seconds for a 660-dim portfolio input). Here the forward is plain `F.linear` + `relu`,
and initialisation rescales random coefficients so each layer's matrix has the scale of a
plain `nn.Linear`. escnn.nn.Linear expands its basis at every training-mode forward (a
Python-level block loop); on the small state networks of the control tasks that fixed cost
dominated, so the input/output maps are computed directly (above).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .reps import MethodCall, Rep, hom_dim, tensor_of, trivial_rep, zero_of


def escnn_nn():
    from ..symmetry.core import import_escnn

    return import_escnn("escnn.nn"), import_escnn("escnn.gspaces")


@torch.no_grad()
def init_like_plain(layer) -> None:
    """Random basis coefficients scaled so the expanded matrix has std 1/sqrt(3 fan_in), like nn.Linear."""
    layer.weights.normal_()
    W, _ = layer.expand_parameters()
    fan_in = W.shape[1]
    layer.weights.mul_(1.0 / math.sqrt(3 * fan_in) / W.std().clamp_min(1e-12))
    if layer.bias is not None:
        layer.bias.uniform_(-1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))


@torch.no_grad()
def _rescale_like_plain(layer, params, fan_in: int) -> None:
    eye = torch.eye(fan_in)
    std = layer(eye).std()  # the layer's matrix, one column per basis input (bias is zero here)
    for p in params:
        p.mul_(1.0 / math.sqrt(3 * fan_in) / std.clamp_min(1e-12))


def fourier_structure(group) -> tuple[torch.Tensor, list]:
    """escnn's regular representation in its Fourier basis: Q [G, G] (orthogonal; columns
    grouped by irrep, copy-major then component; spatial = Q · fourier) and the blocks
    (d, multiplicity, complex-type?) in that order. Every G-equivariant map between regular
    fields is block diagonal there (Schur): an m x m matrix per real irrep, a complex number
    per complex-type irrep."""
    reg = group.regular_representation
    Q = torch.as_tensor(reg.change_of_basis, dtype=torch.float32)
    cols: dict[tuple, list[int]] = {}
    c = 0
    for irr_id in reg.irreps:
        d = group.irrep(*irr_id).size
        cols.setdefault(tuple(irr_id), []).extend(range(c, c + d))
        c += d
    blocks = []
    for irr_id, cc in cols.items():
        irr = group.irrep(*irr_id)
        if irr.type not in ("R", "C"):
            raise NotImplementedError(f"irrep {irr} of quaternionic type")
        blocks.append((irr.size, len(cc) // irr.size, irr.type == "C"))
    order = [i for v in cols.values() for i in v]
    return Q[:, order].contiguous(), blocks


def fourier_blocks_gm(xf: torch.Tensor, blocks, weights, cin: int, cout: int) -> torch.Tensor:
    """Apply block-diagonal Fourier weights to group-major Fourier features [G, N, C_in]."""
    N = xf.shape[1]
    if len(blocks) > 1 and all(d == 1 and m == 1 and not cplx for d, m, cplx in blocks):
        # every irrep 1-D and real (C2, the reflections): one [C_out, C_in] matrix per group axis
        # slot, all of them one batched product (a third of the ops of a product per block)
        return torch.bmm(xf, torch.stack(list(weights)).transpose(1, 2))
    outs = []
    # split, not slicing: a slice's backward writes into a zero tensor of the full size
    parts = xf.split([m * d for d, m, _ in blocks]) if len(blocks) > 1 else (xf,)
    for (d, m, cplx), W, f in zip(blocks, weights, parts):  # f: [m·d, N, C], copy-major then component
        if m == 1 and not cplx:  # 1-D real irreps (all irreps of C2)
            outs.append(f @ W.T)
        elif cplx:  # d = 2, m = 1: (a + ib)(re + i im)
            re, im = f.unbind(0)
            Wa, Wb = W.unbind(0)
            outs.append(torch.stack([re @ Wa.T - im @ Wb.T, re @ Wb.T + im @ Wa.T]))
        else:  # m copies of a d-dim real irrep: one matrix over (channel, copy) per component
            fm = f.reshape(m, d, N, cin).permute(1, 2, 3, 0).reshape(d, N, cin * m)
            o = (fm @ W.T).view(d, N, cout, m).permute(3, 0, 1, 2)
            outs.append(o.reshape(m * d, N, cout))
    return torch.cat(outs) if len(outs) > 1 else outs[0]


class FourierGroupLinear(nn.Module):
    """Exact group convolution between C_in and C_out regular fields ([N, C·|G|], channel-major),
    computed per irrep in the Fourier basis of escnn's regular representation."""

    def __init__(self, group, in_channels: int, out_channels: int):
        super().__init__()
        Qo, self.blocks = fourier_structure(group)
        self.G, self.cin, self.cout = Qo.shape[0], in_channels, out_channels
        # transforms as [G, G] matrices acting on the group axis; grouped columns folded in
        self.register_buffer("to_fourier", Qo)
        self.register_buffer("to_spatial", Qo.T.contiguous())
        self.weights = nn.ParameterList()
        for d, m, cplx in self.blocks:
            shape = (2, out_channels * m, in_channels * m) if cplx else (out_channels * m, in_channels * m)
            self.weights.append(nn.Parameter(torch.randn(*shape)))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        _rescale_like_plain(self, list(self.weights), in_channels * self.G)
        with torch.no_grad():
            self.bias.uniform_(-1, 1).div_(math.sqrt(in_channels * self.G))

    def forward_gm(self, x: torch.Tensor) -> torch.Tensor:
        """The same map on group-major features [G, N, C_in] -> [G, N, C_out] (contiguous), the
        layout EscnnMLP keeps between layers: the Fourier transforms are then plain [G, G]
        matmuls and 1-D irrep blocks are contiguous [N, C] slices, with no transposes."""
        G, N = x.shape[0], x.shape[1]
        xf = (self.to_fourier.T @ x.reshape(G, -1)).view(G, N, self.cin)
        of = fourier_blocks_gm(xf, self.blocks, self.weights, self.cin, self.cout)
        return (self.to_spatial.T @ of.reshape(G, -1)).view(G, N, self.cout) + self.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Channel-major features [N, C·|G|] (used at initialisation and by conv-style callers)."""
        N = x.shape[0]
        y = self.forward_gm(x.view(N, self.cin, self.G).permute(2, 0, 1).contiguous())
        return y.permute(1, 2, 0).reshape(N, self.cout * self.G)


def regular_slot_order(group) -> list[int]:
    """Position of each element (in `group.elements` order) in escnn's regular representation:
    ρ_reg(g) e_0 = e_slot(g), a permutation matrix. Under this labelling escnn's regular
    representation is left translation of functions on G, the convention of the relaxed layers."""
    import numpy as np

    reg = group.regular_representation
    return [int(np.argmax(np.abs(reg(g)[:, 0]))) for g in group.elements]


def _regular_slots(group, rep: Rep):
    """ρ(g) for the element g whose copy of the identity basis vector sits at position s of
    escnn's regular representation (a permutation matrix: ρ_reg(g) e_0 = e_s): [|G|, d, d]."""
    import numpy as np

    return rep.matrices[np.argsort(regular_slot_order(group))]


class _SparseRho(nn.Module):
    """The non-zeros of ρ(g_s) for every slot s (ρ is block diagonal by field: sign and trivial
    fields make it diagonal, a 2-D irrep a 2x2 block), so building a layer's matrix costs
    O(nnz · C) instead of the dense O(|G| d² C) of an einsum with ρ."""

    def __init__(self, rho):
        import numpy as np

        super().__init__()
        G, d, _ = rho.shape
        s, i, j = np.nonzero(np.abs(rho) > 1e-9)
        rows = s * d + i  # (slot, output component), slot-major
        order = np.argsort(rows, kind="stable")
        s, i, j, rows = s[order], i[order], j[order], rows[order]
        self.G, self.d = G, d
        self.one_per_row = len(rows) == G * d and bool(np.all(rows == np.arange(G * d)))  # signed permutations
        self.register_buffer("rows", torch.as_tensor(rows, dtype=torch.long))
        self.register_buffer("cols", torch.as_tensor(j, dtype=torch.long))
        self.register_buffer("vals", torch.as_tensor(rho[s, i, j], dtype=torch.float32))

    def apply(self, w: torch.Tensor, t: dict | None = None, prefix: str = "") -> torch.Tensor:
        """[G·d, C]: row s·d + i is Σ_j ρ(g_s)[i, j] w[j, :], for w [d, C] (or [..., d, C]:
        [..., G·d, C]); t: this module's buffers by name (a stack's, with leading dimensions)."""
        rows, cols, vals = (getattr(self, n) if t is None else t[prefix + n].reshape(-1, t[prefix + n].shape[-1])[0]
                            for n in ("rows", "cols", "vals"))
        contrib = w[..., cols, :] * vals[:, None]
        if self.one_per_row:
            return contrib
        return contrib.new_zeros(*w.shape[:-2], self.G * self.d, w.shape[-1]).index_add_(-2, rows, contrib)


class RegularLift(nn.Module):
    """Equivariant linear map ρ_in -> C regular fields of escnn's regular representation.

    By Frobenius reciprocity Hom_G(ρ_in, regular) ≅ ρ_in: field c is f_c(x)(g) = (ρ_in(g) w_c)·x
    for one free vector w_c ∈ R^{d_in} — the same space and parameter count as escnn.nn.Linear's
    basis between these types (tested against it). The forward builds the [d_in, C·|G|] matrix
    from the non-zeros of ρ and applies it as a plain linear layer: no per-forward basis expansion.
    """

    def __init__(self, group, in_rep: Rep, channels: int):
        super().__init__()
        import numpy as np

        rho = _regular_slots(group, in_rep)
        # ρ(g)w = (ρ(g)⁻¹)ᵀ w: the map x -> w·ρ(g)⁻¹x, for any (not only orthogonal) ρ
        self.rho = _SparseRho(np.linalg.inv(rho).transpose(0, 2, 1))
        d = in_rep.dim
        self.channels, self.G, self.d = channels, group.order(), d
        self.weight = nn.Parameter(torch.empty(d, channels).uniform_(-1 / math.sqrt(d), 1 / math.sqrt(d)))
        self.bias = nn.Parameter(torch.empty(channels).uniform_(-1 / math.sqrt(d), 1 / math.sqrt(d)))

    def matrix(self, t: dict | None = None, prefix: str = "") -> tuple[torch.Tensor, torch.Tensor]:
        """(K [d_in, C·|G|] channel-major, bias [C·|G|]) of out = x @ K + bias; t: this layer's
        tensors by name with leading run dimensions (a stack's): [..., d_in, C·|G|], [..., C·|G|]."""
        w, bias = (tensor_of(self, t, prefix, n) for n in ("weight", "bias"))
        lead = w.shape[:-2]
        K = self.rho.apply(w, t, prefix + "rho.").view(*lead, self.G, self.d, self.channels)
        n = len(lead)
        K = K.permute(*range(n), n + 1, n + 2, n)
        return K.reshape(*lead, self.d, -1), bias.repeat_interleave(self.G, dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        K, b = self.matrix()
        return torch.addmm(b, x, K)

    def forward_gm(self, x: torch.Tensor) -> torch.Tensor:
        """[N, d_in] -> group-major [G, N, C]: slot s is x @ K_s + bias."""
        K = self.rho.apply(self.weight).view(self.G, self.d, self.channels)
        return torch.baddbmm(self.bias.expand(self.G, 1, self.channels), x.expand(self.G, *x.shape), K)


class RegularProject(nn.Module):
    """Equivariant linear map C regular fields -> ρ_out: Hom_G(regular, ρ_out) ≅ ρ_out, so
    out = Σ_c Σ_g ρ_out(g) w_c h_c(g) with one w_c ∈ R^{d_out} per field; the bias lies in the
    invariant subspace of ρ_out (one parameter per trivial irrep), as in escnn.nn.Linear."""

    def __init__(self, group, out_rep: Rep, channels: int):
        super().__init__()
        import numpy as np

        self.rho = _SparseRho(_regular_slots(group, out_rep))
        d, G = out_rep.dim, group.order()
        self.channels, self.G, self.d = channels, G, d
        bound = 1 / math.sqrt(channels * G)
        self.weight = nn.Parameter(torch.empty(channels, d).uniform_(-bound, bound))
        u, sv, _ = np.linalg.svd(out_rep.matrices.mean(0))  # projector onto the invariant subspace
        inv = torch.as_tensor(u[:, sv > 0.5], dtype=torch.float32)
        self.register_buffer("bias_basis", inv.contiguous())  # [d, k]
        self.bias = nn.Parameter(torch.empty(inv.shape[1]).uniform_(-bound, bound))

    def matrix(self, t: dict | None = None, prefix: str = "") -> tuple[torch.Tensor, torch.Tensor]:
        """(K [C·|G|, d_out] channel-major rows, bias [d_out]) of out = h @ K + bias; t: see
        RegularLift.matrix ([..., C·|G|, d_out], [..., d_out])."""
        w, bias, basis = (tensor_of(self, t, prefix, n) for n in ("weight", "bias", "bias_basis"))
        lead = w.shape[:-2]
        K = self.rho.apply(w.transpose(-1, -2), t, prefix + "rho.").view(*lead, self.G, self.d, self.channels)
        n = len(lead)
        K = K.permute(*range(n), n + 2, n, n + 1)
        return K.reshape(*lead, -1, self.d), basis @ bias if bias.dim() == 1 else (basis @ bias[..., None])[..., 0]

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        K, b = self.matrix()
        return torch.addmm(b, h, K)

    def forward_gm(self, h: torch.Tensor) -> torch.Tensor:
        """Group-major [G, N, C] -> [N, d_out]: Σ_s h_s @ K_s + bias."""
        K = self.rho.apply(self.weight.T).view(self.G, self.d, self.channels)
        return torch.bmm(h, K.transpose(1, 2)).sum(0) + self.bias_basis @ self.bias


class EscnnMLP(nn.Module):
    """ρ_in -> C_1 .. C_k regular fields -> ρ_out, every map G-equivariant.

    layers="frobenius" (default): input/output maps are `RegularLift` / `RegularProject` (the
    same spaces as escnn.nn.Linear, no basis expansion per forward); layers="escnn": they are
    escnn.nn.Linear itself (the reference implementation; slower on small networks).
    """

    def __init__(self, in_rep: Rep, out_rep: Rep, channels=(64, 64), layers: str = "frobenius"):
        super().__init__()
        if layers not in ("frobenius", "escnn"):
            raise ValueError(f"layers must be 'frobenius' or 'escnn', got {layers!r}")
        G = in_rep.symmetry.group
        self.layers = layers
        self.hidden = nn.ModuleList(FourierGroupLinear(G, a, b) for a, b in zip(channels[:-1], channels[1:]))
        self._cache: list | None = None
        if layers == "frobenius":
            self.lift, self.project = RegularLift(G, in_rep, channels[0]), RegularProject(G, out_rep, channels[-1])
            return
        enn, gspaces = escnn_nn()
        gs = gspaces.no_base_space(G)
        types = [enn.FieldType(gs, in_rep.escnn_fields())]
        types += [enn.FieldType(gs, [G.regular_representation] * c) for c in channels]
        types.append(enn.FieldType(gs, out_rep.escnn_fields()))
        self.in_type, self.out_type = types[0], types[-1]
        self.lift = enn.Linear(types[0], types[1], initialize=False)
        self.project = enn.Linear(types[-2], types[-1], initialize=False)
        for lin in (self.lift, self.project):
            init_like_plain(lin)

    def train(self, mode: bool = True):
        if self.layers == "frobenius":
            return super().train(mode)
        # escnn's Linear registers extra buffers in eval mode, which changes the state_dict;
        # keep the escnn layers in one mode and cache their expanded matrices here instead.
        self.training = mode
        for m in self.hidden:
            m.train(mode)
        self._cache = None if mode else [self.lift.expand_parameters(), self.project.expand_parameters()]
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.layers == "frobenius":  # group-major features [G, N, C] between layers
            h = torch.relu(self.lift.forward_gm(x))
            for layer in self.hidden:
                h = torch.relu(layer.forward_gm(h))
            return self.project.forward_gm(h)
        (W0, b0), (W1, b1) = self._cache or (self.lift.expand_parameters(), self.project.expand_parameters())
        h = torch.relu(F.linear(x, W0, b0))
        for layer in self.hidden:
            h = torch.relu(layer(h))
        return F.linear(h, W1, b1)

    @torch.no_grad()
    def zero_input_columns(self, cols) -> None:
        """Zero the lift's weights on inputs `cols` (they then start unread). For inputs of a
        diagonal representation (sign or trivial: the trading symmetries) that zeroes exactly
        those columns of the dense kernel; checked."""
        if self.layers != "frobenius":
            raise ValueError("zero_input_columns needs the frobenius layers (layers='escnn' expands escnn's basis)")
        self.lift.weight[list(cols), :] = 0.0
        if self.lift.matrix()[0][list(cols)].abs().max() > 0:
            raise ValueError("the lift mixes these inputs with others (a non-diagonal representation): "
                             "their columns cannot be zeroed alone")

    def dense(self, t: dict | None = None) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The same function as (weight [out, in], bias [out]) pairs with ReLU between them, on
        channel-major features (hidden group convolutions as their dense matrices). t: this
        network's parameters and buffers by name with leading run dimensions (a stack's): the
        same pairs for each run, [..., out, in] and [..., out] (vmapped over the runs)."""
        if t is not None:
            if self.layers != "frobenius" or len(self.hidden):  # the hidden layers' matrices: vmapped
                return _dense_of_stack(self, t)
            (K0, b0), (K1, b1) = self.lift.matrix(t, "lift."), self.project.matrix(t, "project.")
            return [(K0.transpose(-1, -2), b0), (K1.transpose(-1, -2), b1)]
        if self.layers == "frobenius":
            K0, b0 = self.lift.matrix()
            K1, b1 = self.project.matrix()
            first, last = (K0.T, b0), (K1.T, b1)
        else:
            first, last = self._cache or (self.lift.expand_parameters(), self.project.expand_parameters())
        out = [first]
        for layer in self.hidden:
            n = layer.cin * layer.G
            basis = torch.cat([torch.zeros(1, n, device=layer.bias.device), torch.eye(n, device=layer.bias.device)])
            y = layer(basis)  # row 0: the bias; rows 1..n: the columns plus the bias
            out.append(((y[1:] - y[:1]).T, y[0]))
        return out + [last]

    def regularizer(self) -> torch.Tensor:
        return zero_of(self)


def exact_param_count(in_rep: Rep, out_rep: Rep, channels) -> int:
    """Parameters of EscnnMLP without building it: dim Hom_G of each map plus invariant biases."""
    G = in_rep.order
    n = channels[0] * in_rep.dim + channels[0]  # Hom(ρ_in, regular) ≅ ρ_in; one bias per regular field
    for a, b in zip(channels[:-1], channels[1:]):
        n += a * b * G + b
    return n + channels[-1] * out_rep.dim + hom_dim(trivial_rep(in_rep.symmetry, 1), out_rep)


def _dense_of_stack(module: nn.Module, t: dict) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """`module.dense()` of each run of a stack (t: tensors by name with leading run dimensions),
    vmapped over the runs (flattened to one dimension)."""
    from torch.func import functional_call, vmap

    own = dict(module.named_parameters())
    own.update(module.named_buffers())
    name = next(iter(own))
    lead = t[name].shape[: t[name].dim() - own[name].dim()]
    # tensors with the leading dimensions vmapped; others (buffers shared by the runs) as they are
    flat = {"m." + k: v.reshape(-1, *v.shape[len(lead):]) for k, v in t.items()
            if k in own and v.dim() == own[k].dim() + len(lead)}
    shared = {"m." + k: v for k, v in t.items() if k in own and v.dim() == own[k].dim()}
    call = MethodCall(module)
    if getattr(module, "_cache", None) is not None:  # eval mode of layers="escnn": its own expansions cached
        raise ValueError("a stacked exact network expands its runs' parameters: put it in training mode")
    out = vmap(lambda tt: functional_call(call, {**tt, **shared}, ("dense",)))(flat)
    return [(W.reshape(*lead, *W.shape[1:]), b.reshape(*lead, *b.shape[1:])) for W, b in out]
