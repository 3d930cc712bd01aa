"""Image-plane layers for rotation/reflection groups C_N / D_N (N in 1, 2, 4: the rotations that
map the pixel grid onto itself), with the group acting on the plane and, for regular fields,
on the group axis. Image tensors are [B, C, H, W]; regular fields are [B, C·|G|, H, W],
channel-major. The group acts on images as escnn's `rot2dOnR2(N)` / `flipRot2dOnR2(N)`.

- relaxed: relaxed lifting and group convolutions whose kernels are also rotated by g
  (Wang, Walters & Yu 2022): K[g, h] = g·(Σ_l w_l(h) ψ_l(g⁻¹h)).
- relaxed steerable: kernels Σ_b c_b(x) B_b(x) in escnn's steerable basis B with coefficients
  that may vary with the kernel position x; constant coefficients = exactly steerable.
- exact: escnn `R2Conv` with regular fields.
`ImageEncoder` stacks one family's layers with ReLU and averages over the plane, giving
regular fields that an equivariant MLP head (eqtrade.nn) can take.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..symmetry import Symmetry, image_symmetry  # noqa: F401  (re-exported)
from .exact import escnn_nn
from .relaxed import RelaxedModule
from .reps import zero_of


def gspace(symmetry: Symmetry):
    """The escnn gspace whose fibre group is the symmetry's group."""
    _, gspaces = escnn_nn()
    if symmetry.group_kind == "C":
        return gspaces.rot2dOnR2(symmetry.group_order)
    return gspaces.flipRot2dOnR2(symmetry.group_order)


def _fiber_elements(symmetry: Symmetry) -> list:
    """The gspace's group elements in the order of `symmetry.elements` (D1, the mirror: escnn's
    flipRot2dOnR2(1) has the cyclic group {e, flip} as its fibre, listed in the same order)."""
    gs = gspace(symmetry)
    if symmetry.group_kind == "D" and symmetry.group_order == 1:
        return list(gs.fibergroup.elements)
    return list(symmetry.elements)


@functools.lru_cache(maxsize=32)
def _pixel_perms(symmetry: Symmetry, size: int) -> np.ndarray:
    """perm[g] with (g·ψ).flatten() = ψ.flatten()[perm[g]] for a size x size grid."""
    enn, _ = escnn_nn()
    gs = gspace(symmetry)
    t = enn.FieldType(gs, [gs.trivial_repr])
    idx = torch.arange(float(size * size)).view(1, 1, size, size)
    perms = []
    for g in _fiber_elements(symmetry):
        out = enn.GeometricTensor(idx, t).transform(g).tensor.flatten().numpy()
        if not np.allclose(out, np.round(out), atol=1e-4):
            raise ValueError(f"{symmetry.name}: element {g} does not map the pixel grid onto itself; use N in 1, 2, 4")
        perms.append(np.round(out).astype(np.int64))
    return np.stack(perms)


def transform_image(symmetry: Symmetry, x: torch.Tensor, g: int, regular: bool = False) -> torch.Tensor:
    """g·x for images [B, C, H, W] (square), or for regular fields [B, C·|G|, H, W] if `regular`."""
    B, C, H, W = x.shape
    perm = torch.as_tensor(_pixel_perms(symmetry, H)[g], device=x.device)
    y = x.reshape(B, C, H * W)[:, :, perm].view(B, C, H, W)
    if regular:  # (k·f)(h) = f(k⁻¹h) on the group axis
        G = symmetry.order
        src = torch.as_tensor(symmetry.mult_table()[g], device=x.device)
        y = y.view(B, C // G, G, H, W)[:, :, src].reshape(B, C, H, W)
    return y


def _rotation_matrices(symmetry: Symmetry, k: int) -> torch.Tensor:
    perms = torch.as_tensor(_pixel_perms(symmetry, k))
    return F.one_hot(perms, k * k).float()  # R[g, t, s] = 1 where (g·ψ)[t] = ψ[s]


class RelaxedLiftConv2d(RelaxedModule):
    """Image (trivial channels) -> C regular fields: out(g) = Σ_l w_l(g) (g·ψ_l) ⋆ f."""

    def __init__(self, symmetry: Symmetry, in_channels: int, channels: int, kernel: int = 3, banks: int = 2,
                 relaxed: bool = True, stride: int = 1, padding: int | None = None):
        super().__init__()
        G = symmetry.order
        self.stride, self.padding = stride, kernel // 2 if padding is None else padding
        self.register_buffer("rot", _rotation_matrices(symmetry, kernel))
        bound = math.sqrt(banks / (in_channels * kernel * kernel))
        self.psi = nn.Parameter(torch.empty(banks, channels, in_channels, kernel * kernel).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.zeros(channels))
        self._init_weights(banks, G, relaxed)
        self.channels, self.order, self.k = channels, G, kernel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = torch.einsum("lg,lcis,gts->cgit", self.relaxed_weights, self.psi, self.rot)
        k = k.reshape(self.channels * self.order, -1, self.k, self.k)
        return F.conv2d(x, k, self.bias.repeat_interleave(self.order), stride=self.stride, padding=self.padding)


class RelaxedGroupConv2d(RelaxedModule):
    """C_in -> C_out regular fields on the plane: K[g, h] = g·(Σ_l w_l(h) ψ_l(g⁻¹h))."""

    def __init__(self, symmetry: Symmetry, in_channels: int, out_channels: int, kernel: int = 3, banks: int = 2,
                 relaxed: bool = True, stride: int = 1, padding: int | None = None):
        super().__init__()
        self.stride, self.padding = stride, kernel // 2 if padding is None else padding
        table = torch.as_tensor(symmetry.mult_table())
        G = table.shape[0]
        self.register_buffer("onehot", F.one_hot(table, G).float())
        self.register_buffer("rot", _rotation_matrices(symmetry, kernel))
        bound = math.sqrt(banks / (in_channels * G * kernel * kernel))
        self.psi = nn.Parameter(torch.empty(banks, G, out_channels, in_channels, kernel * kernel).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self._init_weights(banks, G, relaxed)
        self.cin, self.cout, self.order, self.banks, self.k = in_channels, out_channels, G, banks, kernel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        G, L, S = self.order, self.banks, self.k * self.k
        mix = torch.einsum("lh,ghk->ghlk", self.relaxed_weights, self.onehot).reshape(G * G, L * G)
        base = (mix @ self.psi.reshape(L * G, -1)).view(G, G, self.cout, self.cin, S)
        k = torch.einsum("ghois,gts->ogiht", base, self.rot).reshape(self.cout * G, self.cin * G, self.k, self.k)
        return F.conv2d(x, k, self.bias.repeat_interleave(G), stride=self.stride, padding=self.padding)


class RelaxedSteerableConv2d(nn.Module):
    """Σ_b c_b(x) B_b(x) over escnn's steerable basis B of an R2Conv(in_type, out_type), with
    coefficients per kernel position x, initialised constant (= escnn's R2Conv, exactly steerable)."""

    def __init__(self, in_type, out_type, kernel: int = 3, stride: int = 1, padding: int | None = None):
        super().__init__()
        enn, _ = escnn_nn()
        self.stride, self.padding = stride, kernel // 2 if padding is None else padding
        conv = enn.R2Conv(in_type, out_type, kernel, padding=self.padding, stride=stride, initialize=True)
        be = conv.basisexpansion
        if be._n_pairs != 1:
            raise ValueError("relaxed steerable conv supports one input and one output field type")
        io = be._representations_pairs[0]
        blk = getattr(be, f"block_expansion_{be._escape_pair(io)}")
        basis = blk.sampled_basis.detach().clone()  # [nb, o, i, S]
        self.register_buffer("basis", basis)
        nb, S = basis.shape[0], basis.shape[-1]
        coef = conv.weights.detach().view(-1, nb)  # [pairs, nb]
        self.coef = nn.Parameter(coef[:, :, None].repeat(1, 1, S).contiguous())
        self.out_count, self.in_count = be._out_count[io[1]], be._in_count[io[0]]
        conv.weights.requires_grad_(False)  # replaced by the per-position coefficients
        self.conv = conv  # holds the bias and its expansion
        self.k = kernel

    def kernel(self) -> torch.Tensor:
        f = torch.einsum("kbs,bois->kois", self.coef, self.basis)
        o, i = f.shape[1], f.shape[2]
        f = f.view(self.out_count, self.in_count, o, i, -1).transpose(1, 2)
        return f.reshape(self.out_count * o, self.in_count * i, self.k, self.k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.conv.bias_expansion @ self.conv.bias if self.conv.bias is not None else None
        return F.conv2d(x, self.kernel(), bias, stride=self.stride, padding=self.padding)

    def regularizer(self) -> torch.Tensor:
        """Σ Var_x c_b(x): zero iff the coefficients are constant over the kernel (exactly steerable)."""
        return self.coef.var(dim=2, unbiased=False).sum()


class EscnnConv(nn.Module):
    """escnn's R2Conv (exactly steerable), run as a plain conv2d with its expanded kernel."""

    def __init__(self, in_type, out_type, kernel, stride: int = 1, padding: int | None = None):
        super().__init__()
        enn, _ = escnn_nn()
        self.conv = enn.R2Conv(in_type, out_type, kernel, padding=kernel // 2 if padding is None else padding,
                               stride=stride)

    def forward(self, x):
        W, b = self.conv.expand_parameters()
        return F.conv2d(x, W, b, stride=self.conv.stride, padding=self.conv.padding)


class ImageEncoder(nn.Module):
    """Image [B, c_in, H, W] -> regular fields [B, C·|G|] (equivariant families) or features
    [B, C] (plain): conv layers with ReLU, then the mean over the plane."""

    def __init__(self, family: str, symmetry: Symmetry, in_channels: int, channels=(8, 8), kernel: int = 3,
                 banks: int = 2):
        super().__init__()
        layers: list[nn.Module] = []
        if family == "plain":
            dims = [in_channels, *channels]
            for a, b in zip(dims[:-1], dims[1:]):
                layers += [nn.Conv2d(a, b, kernel, padding=kernel // 2), nn.ReLU()]
        elif family == "relaxed":
            layers += [RelaxedLiftConv2d(symmetry, in_channels, channels[0], kernel, banks), nn.ReLU()]
            for a, b in zip(channels[:-1], channels[1:]):
                layers += [RelaxedGroupConv2d(symmetry, a, b, kernel, banks), nn.ReLU()]
        elif family in ("exact", "relaxed-steerable"):
            enn, _ = escnn_nn()
            gs = gspace(symmetry)
            types = [enn.FieldType(gs, [gs.trivial_repr] * in_channels)]
            types += [enn.FieldType(gs, [gs.regular_repr] * c) for c in channels]
            cls = EscnnConv if family == "exact" else RelaxedSteerableConv2d
            for a, b in zip(types[:-1], types[1:]):
                layers += [cls(a, b, kernel), nn.ReLU()]
        else:
            raise ValueError(f"unknown image family {family!r}; use plain, exact, relaxed or relaxed-steerable")
        self.net = nn.Sequential(*layers)
        self.family = family

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).mean(dim=(2, 3))

    def regularizer(self) -> torch.Tensor:
        return sum((m.regularizer() for m in self.modules() if m is not self and hasattr(m, "regularizer")),
                   zero_of(self))
