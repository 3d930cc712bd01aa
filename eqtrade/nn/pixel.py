"""Pixel networks of DrQ-v2 for every family: the reference encoder, the lifted and the
group/steerable-convolution encoders, the group trunk, equivariant actor and critic heads, and
the pixel equivariance measure. The group acts on frames by `eqtrade.symmetry.image`.

See eqtrade.agents.drq for what each family and encoder is; the algorithm lives there."""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from .gemm import Linear
from ..symmetry.image import image_transform
from .reps import zero_of

ENCODERS = ("cnn", "lift", "group", "steerable")


class PixelEncoder(nn.Module):
    """[B, C, H, W] uint8-valued frames -> flat features (the reference DrQ-v2 encoder)."""

    def __init__(self, in_channels: int, size: int, channels: int = 32):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(in_channels, channels, 3, stride=2), nn.ReLU(),
                                 nn.Conv2d(channels, channels, 3), nn.ReLU(),
                                 nn.Conv2d(channels, channels, 3), nn.ReLU(),
                                 nn.Conv2d(channels, channels, 3), nn.ReLU())
        with torch.no_grad():
            self.repr_dim = int(self.net(torch.zeros(1, in_channels, size, size)).numel())

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs / 255.0 - 0.5).flatten(1)


def mlp(n_in: int, hidden, n_out: int) -> nn.Sequential:
    dims = [n_in, *hidden]
    layers: list[nn.Module] = []
    for a, b in zip(dims[:-1], dims[1:]):
        layers += [Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers, Linear(dims[-1], n_out))




def _inverse_index(symmetry) -> np.ndarray:
    return np.asarray(symmetry.mult_table())[:, 0]  # g⁻¹·e = g⁻¹


def frames_transform(symmetry, frames: torch.Tensor, g: int) -> torch.Tensor:
    """g·frames for [..., H, W] tensors, as the task declares its group acts on its images
    (eqtrade.symmetry.image.image_transform: the mirror, or reacher's quarter turns and flips)."""
    return image_transform(symmetry, frames, g)


def act_on_regular(symmetry, h: torch.Tensor, g: int) -> torch.Tensor:
    """g·h for regular feature maps [B, C·|G|, H, W] (channel-major): the frames' transform on
    the plane and (g·f)(k) = f(g⁻¹k) on the group axis."""
    B, CG, H, W = h.shape
    G = symmetry.order
    src = torch.as_tensor(np.asarray(symmetry.mult_table())[g], device=h.device)
    h = frames_transform(symmetry, h, g)
    return h.reshape(B, CG // G, G, H, W)[:, :, src].reshape(B, CG, H, W)


def image_group(symmetry):
    """The image-plane group of eqtrade.nn.conv2d that acts on frames as the task's group does,
    and the map task element -> image element (found on a test pattern; an error if none fits)."""
    from .conv2d import image_symmetry, transform_image

    if symmetry.name.startswith("planar-"):
        img = image_symmetry(symmetry.group_order, dihedral=symmetry.group_kind == "D")
    elif symmetry.order == 2:
        img = image_symmetry(1, dihedral=True)  # the width flip
    else:
        raise ValueError(f"no image group for {symmetry.name}")
    x = torch.randn(1, 1, 7, 7, generator=torch.Generator().manual_seed(0))
    index = []
    for g in range(symmetry.order):
        want = frames_transform(symmetry, x, g)
        hits = [k for k in range(img.order) if torch.equal(transform_image(img, x, k), want)]
        if len(hits) != 1:
            raise ValueError(f"{symmetry.name}: element {g} matches no single element of {img.name} on images")
        index.append(hits[0])
    if img.order != symmetry.order or sorted(index) != list(range(img.order)):
        raise ValueError(f"{symmetry.name} and {img.name} are not the same group on images")
    return img, index


class LiftEncoder(PixelEncoder):
    """The reference encoder applied to g⁻¹·x for every g (weight sharing): [B, C, H, W] ->
    [|G|·B, R], rows g-major; for the mirror, [x; m·x]."""

    def __init__(self, symmetry, in_channels: int, size: int, channels: int = 32):
        super().__init__(in_channels, size, channels)
        self.symmetry, self.inv = symmetry, _inverse_index(symmetry)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return super().forward(torch.cat([frames_transform(self.symmetry, obs, int(self.inv[g]))
                                          for g in range(self.symmetry.order)]))


class GroupConvEncoder(nn.Module):
    """A conv stack of regular fields (the reference's 4 layers: 4x4 stride 2, padding 1 first, so
    that the strided grid maps onto itself under flips and quarter turns; then three 3x3), then
    the feature map h(x), which satisfies h(g·x) = g·h(x), read as [|G|·B, R]: the rows of g hold
    g⁻¹·h (so that a shared trunk gives a regular field, as with the lift).

    kind "group": lifting and group convolutions (eqtrade.nn.conv2d), relaxed weights w_l(g) when
    `relaxed` (fixed uniform, i.e. exact, otherwise); kind "steerable": escnn's R2Conv in its
    steerable basis, exact, or with coefficients that vary over the kernel when `relaxed`.
    `channels` is per field: a layer has channels·|G| feature maps."""

    def __init__(self, symmetry, kind: str, relaxed: bool, in_channels: int, size: int, channels: int,
                 banks: int = 2):
        super().__init__()
        from .conv2d import (RelaxedGroupConv2d, RelaxedLiftConv2d, RelaxedSteerableConv2d, EscnnConv,
                                 escnn_nn, gspace)

        if size % 2:
            raise ValueError(f"the {kind} encoder needs an even frame size (its 4x4 stride-2 first layer maps the "
                             f"strided grid onto itself only then), got {size}")
        img, index = image_group(symmetry)
        self.symmetry, self.inv = symmetry, _inverse_index(symmetry)
        self.register_buffer("to_task", torch.as_tensor(index))  # task element g = image element index[g]
        # forward's row g holds g⁻¹·h: on the group axis, (g⁻¹·f)(k) = f(g·k), read straight from the
        # image-ordered channels (one gather per g, indices fixed here rather than per call)
        table = np.asarray(symmetry.mult_table())
        self.register_buffer("rows", torch.as_tensor(np.asarray(index)[table[self.inv]]))  # [G, G]
        shapes = [(4, 2, 1), (3, 1, 0), (3, 1, 0), (3, 1, 0)]  # kernel, stride, padding
        banks = banks if relaxed else 1  # exact: one kernel bank (more would add parameters, not functions)
        layers: list[nn.Module] = []
        if kind == "group":
            for i, (k, st, pad) in enumerate(shapes):
                layers += [RelaxedLiftConv2d(img, in_channels, channels, k, banks, relaxed, st, pad) if i == 0 else
                           RelaxedGroupConv2d(img, channels, channels, k, banks, relaxed, st, pad), nn.ReLU()]
        elif kind == "steerable":
            enn, _ = escnn_nn()
            gs = gspace(img)
            types = [enn.FieldType(gs, [gs.trivial_repr] * in_channels)] + \
                    [enn.FieldType(gs, [gs.regular_repr] * channels)] * len(shapes)
            cls = RelaxedSteerableConv2d if relaxed else EscnnConv
            for (a, b), (k, st, pad) in zip(zip(types[:-1], types[1:]), shapes):
                layers += [cls(a, b, k, st, pad), nn.ReLU()]
        else:
            raise ValueError(f"unknown conv encoder kind {kind!r}; use group or steerable")
        self.net = nn.Sequential(*layers)
        self.kind, self.order = kind, symmetry.order
        with torch.no_grad():
            self.repr_dim = int(self.net(torch.zeros(1, in_channels, size, size)).numel())

    def feature_map(self, obs: torch.Tensor) -> torch.Tensor:
        """h(x) [B, C·|G|, H', W'], the group axis in the task's element order."""
        h = self.net(obs / 255.0 - 0.5)
        B, CG, H, W = h.shape
        return h.view(B, CG // self.order, self.order, H, W)[:, :, self.to_task].reshape(B, CG, H, W)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """[|G|·B, R]: row block g is g⁻¹·h(x) = act_on_regular(h, g⁻¹), flattened."""
        h = self.net(obs / 255.0 - 0.5)
        B, CG, H, W = h.shape
        h = h.view(B, CG // self.order, self.order, H, W)
        return torch.cat([frames_transform(self.symmetry, h[:, :, self.rows[g]], int(self.inv[g])).flatten(1)
                          for g in range(self.order)])

    def regularizer(self) -> torch.Tensor:
        return sum((m.regularizer() for m in self.net if hasattr(m, "regularizer")), zero_of(self))


class GroupTrunk(nn.Module):
    """Encoder features of g⁻¹·x for every g ([|G|·B, R], g-major) -> a regular field [B, F·|G|]
    (channel-major [F, |G|]): z(g) = Σ_l w_l(g) tanh(LN(T_l(h(g⁻¹·x)))), exact when w does not
    depend on g."""

    def __init__(self, order: int, repr_dim: int, feature_dim: int, relaxed: bool, banks: int = 2):
        super().__init__()
        n = banks if relaxed else 1
        self.trunks = nn.ModuleList(Linear(repr_dim, feature_dim) for _ in range(n))
        self.ln = nn.LayerNorm(feature_dim)
        self.relaxed, self.order = relaxed, order
        if relaxed:
            self.relaxed_weights = nn.Parameter(torch.full((n, order), 1.0 / n))

    def forward(self, h2: torch.Tensor) -> torch.Tensor:
        G = self.order
        B = h2.shape[0] // G
        if self.relaxed:
            w = self.relaxed_weights.repeat_interleave(B, dim=1)  # [L, G·B]: the rows of each g
            z = sum(w[l, :, None] * torch.tanh(self.ln(t(h2))) for l, t in enumerate(self.trunks))
        else:
            z = torch.tanh(self.ln(self.trunks[0](h2)))
        return z.view(G, B, -1).permute(1, 2, 0).reshape(B, -1)

    def regularizer(self) -> torch.Tensor:
        if not self.relaxed:
            return self.ln.weight.new_zeros(())
        return self.relaxed_weights.var(dim=1, unbiased=False).sum()


class EquivariantActor(nn.Module):
    kind = "actor"

    def __init__(self, symmetry, repr_dim: int, feature_dim: int, hidden, relaxed: bool, banks: int):
        super().__init__()
        from .relaxed import RelaxedMLP
        from .reps import action_rep, regular_rep

        G = symmetry.order
        self.trunk = GroupTrunk(G, repr_dim, feature_dim, relaxed, banks)
        self.policy = RelaxedMLP(regular_rep(symmetry, feature_dim), action_rep(symmetry),
                                 tuple(max(1, h // G) for h in hidden), banks=banks, relaxed=relaxed)
        self.act_dim = symmetry.action_dim

    def logits(self, h2: torch.Tensor) -> torch.Tensor:
        """The action mean before tanh: equivariant like it (tanh is odd), and still informative where
        a trained policy saturates at ±1."""
        return self.policy(self.trunk(h2))

    def forward(self, h2: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.logits(h2))  # tanh is odd: the sign actions stay equivariant

    def regularizer(self) -> torch.Tensor:
        return self.trunk.regularizer() + self.policy.regularizer()


class EquivariantCritic(nn.Module):
    def __init__(self, symmetry, repr_dim: int, feature_dim: int, hidden, relaxed: bool, banks: int):
        super().__init__()
        from .relaxed import RelaxedMLP
        from .reps import action_rep, regular_rep, trivial_rep

        G = symmetry.order
        self.trunk = GroupTrunk(G, repr_dim, feature_dim, relaxed, banks)
        in_rep = regular_rep(symmetry, feature_dim) + action_rep(symmetry)
        ch = tuple(max(1, h // G) for h in hidden)
        self.q1 = RelaxedMLP(in_rep, trivial_rep(symmetry, 1), ch, banks=banks, relaxed=relaxed)
        self.q2 = RelaxedMLP(in_rep, trivial_rep(symmetry, 1), ch, banks=banks, relaxed=relaxed)

    def forward(self, h2: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = torch.cat([self.trunk(h2), action], dim=1)
        return self.q1(z).squeeze(1), self.q2(z).squeeze(1)

    def regularizer(self) -> torch.Tensor:
        return self.trunk.regularizer() + self.q1.regularizer() + self.q2.regularizer()


def pixel_equivariance_error(actor: nn.Module, encoder: nn.Module, symmetry, frames: torch.Tensor) -> float:
    """max over g of ‖μ(g·x) − ρ(g)μ(x)‖ / ‖μ(x)‖ of an actor on frames [B, C, H, W] (g acting on
    frames as the task declares), μ the action mean before tanh (`logits`, where the actor has
    them: a saturated policy's ±1 would hide how far its networks moved), computed in float64 on
    copies, so that it measures the networks' symmetry rather than float32 round-off (which
    alone reaches 1e-5 of a small μ)."""
    actor, encoder = copy.deepcopy(actor).double(), copy.deepcopy(encoder).double()
    f = getattr(actor, "logits", actor)
    frames = frames.double()
    with torch.no_grad():
        mu = f(encoder(frames))
        errs = [float((f(encoder(frames_transform(symmetry, frames, g))) - symmetry.transform_action(mu, g)).norm()
                      / mu.norm().clamp_min(1e-12)) for g in range(1, symmetry.order)]
    return max(errs)


class DrQActor(nn.Module):
    kind = "actor"

    def __init__(self, repr_dim: int, act_dim: int, feature_dim: int, hidden):
        super().__init__()
        self.trunk = nn.Sequential(Linear(repr_dim, feature_dim), nn.LayerNorm(feature_dim), nn.Tanh())
        self.policy = mlp(feature_dim, hidden, act_dim)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """The deterministic action mean in [-1, 1]."""
        return torch.tanh(self.policy(self.trunk(h)))


class DrQCritic(nn.Module):
    def __init__(self, repr_dim: int, act_dim: int, feature_dim: int, hidden):
        super().__init__()
        self.trunk = nn.Sequential(Linear(repr_dim, feature_dim), nn.LayerNorm(feature_dim), nn.Tanh())
        self.q1 = mlp(feature_dim + act_dim, hidden, 1)
        self.q2 = mlp(feature_dim + act_dim, hidden, 1)

    def forward(self, h: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = torch.cat([self.trunk(h), action], dim=1)
        return self.q1(z).squeeze(1), self.q2(z).squeeze(1)
