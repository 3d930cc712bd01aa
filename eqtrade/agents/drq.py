"""DrQ-v2 (Yarats et al. 2021) for pixel tasks (``dmc-pixels/...``): random-shift augmentation,
n-step returns, a DDPG-style actor with scheduled exploration noise, twin critics, the convolutional
encoder trained by the critic only.

Networks as in the paper's reference implementation: encoder 4 conv layers of 32 channels (3x3,
the first with stride 2) on frames scaled to [-0.5, 0.5]; actor and critics each a trunk
(Linear to `feature_dim`, LayerNorm, tanh) and MLPs of width `hidden`.

Families, for the task's group G (the mirror m of the C2 tasks: the image's width flip; reacher's
quarter turns and flips of the top view; the actions as in the state task):
- plain: the reference networks (`encoder = {kind = "cnn"}`).
- exact: a regular field over G, z(g) = trunk(h(g⁻¹·x)), so that z(k·x) is z(x) shifted along
  the group axis, exactly; actor and critic heads are exact group MLPs on regular fields
  (eqtrade.nn.relaxed with fixed uniform weights): the actor's mean is equivariant, the critics
  invariant. The encoder h, `encoder = {kind = ...}`:
  - "lift" (default): the reference CNN applied to every g⁻¹·x with the same weights (a lifting by
    weight sharing; the stride-2 convolutions need not commute with g);
  - "group": lifting and group convolutions (eqtrade.nn.conv2d), regular fields throughout,
    h(g·x) = g·h(x), the first layer 4x4 with stride 2 and padding 1 so that the strided grid
    maps onto itself;
  - "steerable": the same stack of escnn R2Conv layers (steerable basis, regular fields).
- relaxed: the same, with every G-indexed weight relaxed: the trunk z(g) = Σ_l w_l(g)
  trunk_l(h(g⁻¹·x)), relaxed group MLP heads, and in the encoder relaxed group convolutions
  (w_l(g) per layer) or relaxed steerable convolutions (basis coefficients that vary over the
  kernel); all start exactly equivariant and the regulariser (× reg_coef) pulls them back.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces
from torch import nn

from ..nn.reps import zero_of
from .buffer import ReplayBuffer
from .common import Agent, BaseConfig, EnvSpec, check_finite


@dataclass
class DrQConfig(BaseConfig):
    """DrQ-v2's options (defaults of the reference implementation where they fit a CPU)."""

    hidden: tuple = (1024, 1024)
    lr: float = 1e-4
    batch_size: int = 256
    buffer_size: int = 20_000  # uint8 frames: about 2.5 GB at 84x84x9; checkpoints hold it
    learning_starts: int = 1000  # random actions first (the reference: 4 000 frames)
    train_freq: int = 2  # one update every 2 env steps
    n_step: int = 3
    feature_dim: int = 50
    channels: int = 32
    tau: float = 0.01
    std_start: float = 1.0  # exploration noise: linear from std_start to std_end over std_steps env steps
    std_end: float = 0.1
    std_steps: int = 100_000
    std_clip: float = 0.3
    pad: int = 4  # random shift of up to `pad` pixels


def encoder_kind(config) -> str:
    """The DrQ-v2 encoder of a config (`encoder = {kind = ...}`; default: the reference CNN for
    plain, the lift for exact and relaxed), checked against the family."""
    kind = (config.encoder or {}).get("kind") or ("cnn" if config.family == "plain" else "lift")
    if kind not in ENCODERS:
        raise ValueError(f"unknown DrQ-v2 encoder {kind!r}; use {', '.join(ENCODERS)}")
    if (kind == "cnn") != (config.family == "plain"):
        raise ValueError(f"the {config.family} family takes the encoders "
                         f"{'cnn' if config.family == 'plain' else 'lift, group or steerable'}, not {kind!r}")
    return kind


def random_shift(x: torch.Tensor, pad: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """DrQ's augmentation: pad by replication, then crop back at a random integer shift of up to
    `pad` pixels per image (bilinear sampling at pixel centres: an exact translation)."""
    n, _, h, w = x.shape
    if h != w:
        raise ValueError(f"random_shift needs square images, got {h}x{w}")
    x = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    eps = 1.0 / (h + 2 * pad)
    arange = torch.linspace(-1.0 + eps, 1.0 - eps, h + 2 * pad, device=x.device)[:h]
    arange = arange.unsqueeze(0).repeat(h, 1).unsqueeze(2)
    base = torch.cat([arange, arange.transpose(1, 0)], dim=2).unsqueeze(0).repeat(n, 1, 1, 1)
    # drawn on the generator's device (the CPU), then moved: the same shifts on any device
    shift = torch.randint(0, 2 * pad + 1, size=(n, 1, 1, 2), generator=generator,
                          device=generator.device if generator is not None else x.device).to(x.device)
    return F.grid_sample(x, base + shift * 2.0 / (h + 2 * pad), padding_mode="zeros", align_corners=False)


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


def _mlp(n_in: int, hidden, n_out: int) -> nn.Sequential:
    dims = [n_in, *hidden]
    layers: list[nn.Module] = []
    for a, b in zip(dims[:-1], dims[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(dims[-1], n_out))


ENCODERS = ("cnn", "lift", "group", "steerable")


def _inverse_index(symmetry) -> np.ndarray:
    return np.asarray(symmetry.mult_table())[:, 0]  # g⁻¹·e = g⁻¹


def frames_transform(symmetry, frames: torch.Tensor, g: int) -> torch.Tensor:
    """g·frames for [..., H, W] tensors, as the task declares its group acts on its images
    (eqtrade.envs.dmc_pixels.image_transform: the mirror, or reacher's quarter turns and flips)."""
    from ..envs.dmc_pixels import image_transform

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
    from ..nn.conv2d import image_symmetry, transform_image

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
        from ..nn.conv2d import (RelaxedGroupConv2d, RelaxedLiftConv2d, RelaxedSteerableConv2d, _EscnnConv,
                                 _enn, gspace)

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
            enn, _ = _enn()
            gs = gspace(img)
            types = [enn.FieldType(gs, [gs.trivial_repr] * in_channels)] + \
                    [enn.FieldType(gs, [gs.regular_repr] * channels)] * len(shapes)
            cls = RelaxedSteerableConv2d if relaxed else _EscnnConv
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
        self.trunks = nn.ModuleList(nn.Linear(repr_dim, feature_dim) for _ in range(n))
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
        from ..nn.relaxed import RelaxedMLP
        from ..nn.reps import action_rep, regular_rep

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
        from ..nn.relaxed import RelaxedMLP
        from ..nn.reps import action_rep, regular_rep, trivial_rep

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
        self.trunk = nn.Sequential(nn.Linear(repr_dim, feature_dim), nn.LayerNorm(feature_dim), nn.Tanh())
        self.policy = _mlp(feature_dim, hidden, act_dim)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """The deterministic action mean in [-1, 1]."""
        return torch.tanh(self.policy(self.trunk(h)))


class DrQCritic(nn.Module):
    def __init__(self, repr_dim: int, act_dim: int, feature_dim: int, hidden):
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(repr_dim, feature_dim), nn.LayerNorm(feature_dim), nn.Tanh())
        self.q1 = _mlp(feature_dim + act_dim, hidden, 1)
        self.q2 = _mlp(feature_dim + act_dim, hidden, 1)

    def forward(self, h: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = torch.cat([self.trunk(h), action], dim=1)
        return self.q1(z).squeeze(1), self.q2(z).squeeze(1)


class DrQV2(Agent):
    """DrQ-v2 with `learn(steps)`, `predict(obs)`, `save(path)`, `DrQV2.load(path)` (pixel tasks)."""

    algo = "drqv2"
    config_cls = DrQConfig
    loss_columns = ("critic_loss", "actor_loss", "critic_q")
    extra_columns = ("std",)

    def __init__(self, env, config: DrQConfig | None = None, env_spec: EnvSpec | None = None, eval_env=None):
        config = copy.copy(config) if config is not None else DrQConfig()
        if config.family not in ("plain", "exact", "relaxed"):
            raise ValueError(f"unknown family {config.family!r}; use plain, exact or relaxed")
        super().__init__(env, config, env_spec, eval_env)
        obs_space, act_space = env.observation_space, env.action_space
        if not (isinstance(obs_space, spaces.Box) and len(obs_space.shape) == 3):
            raise ValueError(f"DrQ-v2 needs image observations [C, H, W] (dmc-pixels/...), got {obs_space}")
        if not isinstance(act_space, spaces.Box):
            raise ValueError(f"DrQ-v2 needs continuous actions, got {act_space}")
        c, size, _ = obs_space.shape
        act_dim = int(np.prod(act_space.shape))
        kind = encoder_kind(config)
        if config.family == "plain":
            self.encoder = PixelEncoder(c, size, config.channels)
            self.actor = DrQActor(self.encoder.repr_dim, act_dim, config.feature_dim, config.hidden)
            self.critic = DrQCritic(self.encoder.repr_dim, act_dim, config.feature_dim, config.hidden)
        else:
            if self.symmetry is None:
                raise ValueError(f"the {config.family} DrQ-v2 networks need a task that declares a symmetry")
            rel = config.family == "relaxed"
            if kind == "lift":
                self.encoder = LiftEncoder(self.symmetry, c, size, config.channels)
            else:  # per field, about the reference's parameters: channels / sqrt|G|
                per_field = max(1, round(config.channels / math.sqrt(self.symmetry.order)))
                self.encoder = GroupConvEncoder(self.symmetry, kind, rel, c, size, per_field, config.banks)
            self.actor = EquivariantActor(self.symmetry, self.encoder.repr_dim, config.feature_dim, config.hidden,
                                          rel, config.banks)
            self.critic = EquivariantCritic(self.symmetry, self.encoder.repr_dim, config.feature_dim, config.hidden,
                                            rel, config.banks)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self._to_device("encoder", "actor", "critic", "critic_target")
        self.encoder_opt = torch.optim.Adam(self.encoder.parameters(), lr=config.lr)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=config.lr)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=config.lr)
        self.low = torch.as_tensor(act_space.low, dtype=torch.float32, device=self.device)
        self.high = torch.as_tensor(act_space.high, dtype=torch.float32, device=self.device)
        self.buffer = ReplayBuffer(config.buffer_size, obs_space.shape, act_space.shape, np.float32, seed=config.seed,
                                   n_step=config.n_step, gamma=config.gamma, obs_dtype=np.uint8)

    # -- policy ---------------------------------------------------------------------------------
    def std(self) -> float:
        """The exploration noise's standard deviation at the current step (linear schedule)."""
        c = self.config
        frac = min(1.0, self.step / max(1, c.std_steps))
        return c.std_start + frac * (c.std_end - c.std_start)

    def _scale(self, a: torch.Tensor) -> torch.Tensor:
        return self.low + (a + 1.0) * 0.5 * (self.high - self.low)

    @torch.no_grad()
    def act(self, obs, explore: bool):
        o = torch.as_tensor(np.asarray(obs), dtype=torch.float32, device=self.device)
        single = o.dim() == 3
        o = o.unsqueeze(0) if single else o
        if explore and self.step < self.config.learning_starts:
            a = torch.as_tensor(self.rng.uniform(-1, 1, (o.shape[0], self.low.numel())), dtype=torch.float32,
                                device=self.device)
        else:
            a = self.actor(self.encoder(o))
            if explore:
                a = (a + self.std() * self._randn(a.shape)).clamp(-1.0, 1.0)
        a = self._scale(a).cpu().numpy()
        return a[0] if single else a

    def policy_module(self):
        return self.actor

    def equivariance_error(self, n: int = 32) -> float | None:
        """The actor's measured mirror-equivariance error on stored frames (None for plain)."""
        if self.config.family == "plain" or len(self.buffer) == 0:
            return None
        idx = np.random.default_rng(0).integers(0, len(self.buffer), size=min(n, len(self.buffer)))
        return pixel_equivariance_error(self.actor, self.encoder, self.symmetry,
                                         torch.from_numpy(self.buffer.obs[idx]).float().to(self.device))

    def _reg(self, module) -> torch.Tensor:
        if not hasattr(module, "regularizer"):
            return torch.zeros((), device=self.device)
        return self.config.reg_coef * module.regularizer()

    # -- learning -------------------------------------------------------------------------------
    def _noisy(self, mean: torch.Tensor) -> torch.Tensor:
        c = self.config
        noise = (self.std() * self._randn(mean.shape)).clamp(-c.std_clip, c.std_clip)
        return (mean + noise).clamp(-1.0, 1.0)

    def update(self) -> dict[str, float]:
        c = self.config
        b = self.buffer.sample(c.batch_size, self.device)
        obs = self.encoder(random_shift(b["obs"].float(), c.pad, self.torch_gen))
        with torch.no_grad():
            nxt = self.encoder(random_shift(b["next_obs"].float(), c.pad, self.torch_gen))
            a_next = self._noisy(self.actor(nxt))
            q1t, q2t = self.critic_target(nxt, a_next)
            y = b["rewards"] * c.reward_scale + b["discount"] * torch.min(q1t, q2t)
        # actions are stored in the env's units; the networks work in [-1, 1]
        a = 2.0 * (b["actions"] - self.low) / (self.high - self.low) - 1.0
        q1, q2 = self.critic(obs, a)
        critic_loss = F.mse_loss(q1, y) + F.mse_loss(q2, y) + self._reg(self.critic) + self._reg(self.encoder)
        self.encoder_opt.zero_grad(set_to_none=True)
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_opt.step()
        self.encoder_opt.step()
        h = obs.detach()  # the actor does not train the encoder
        qa1, qa2 = self.critic(h, self._noisy(self.actor(h)))
        actor_loss = -torch.min(qa1, qa2).mean() + self._reg(self.actor)
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_opt.step()
        with torch.no_grad():
            for p, tp in zip(self.critic.parameters(), self.critic_target.parameters()):
                tp.lerp_(p, c.tau)
        return {"critic_loss": check_finite("critic_loss", critic_loss, self.step),
                "actor_loss": check_finite("actor_loss", actor_loss, self.step),
                "critic_q": float(q1.detach().mean())}

    def extra_metrics(self) -> dict[str, float]:
        return {"std": self.std()}

    # -- persistence ----------------------------------------------------------------------------
    def _state(self) -> dict:
        return {k: getattr(self, k).state_dict() for k in
                ("encoder", "actor", "critic", "critic_target", "encoder_opt", "actor_opt", "critic_opt")}

    def _load_state(self, s: dict) -> None:
        for k, v in s.items():
            getattr(self, k).load_state_dict(v)
