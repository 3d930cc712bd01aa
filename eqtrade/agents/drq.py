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

The networks are in eqtrade.nn.pixel; this module is the algorithm.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces

from ..envs.factory import EnvSpec
from ..envs.protocol import EnvInterface
from ..nn import FAMILIES
from ..nn.pixel import (ENCODERS, DrQActor, DrQCritic, EquivariantActor, EquivariantCritic, GroupConvEncoder,
                        LiftEncoder, PixelEncoder, pixel_equivariance_error)
from .base import Agent, BaseConfig, adam, check_finite
from .buffer import ReplayBuffer
from ..util import MAX_STEPS, Range


@dataclass
class DrQConfig(BaseConfig):
    """DrQ-v2's options (defaults of the reference implementation where they fit a CPU)."""

    hidden: tuple = (1024, 1024)
    lr: float = 1e-4
    batch_size: int = 256
    buffer_size: int = 20_000  # uint8 frames, next observations' new frame only (whole with obs_noise): 1.6 GiB at 84x84x9
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

    ranges = {
        "lr": Range(0, lo_open=True, note="the learning rate"),
        "n_step": Range(1, 1000),
        "feature_dim": Range(1, 65536), "channels": Range(1, 4096),
        "tau": Range(0, 1, lo_open=True, note="target networks' update rate; 1: copy"),
        "std_start": Range(0), "std_end": Range(0), "std_steps": Range(0, MAX_STEPS), "std_clip": Range(0),
        "pad": Range(0, 84, note="pixels of random shift"),
    }


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


class DrQV2(Agent):
    """DrQ-v2 with `learn(steps)`, `predict(obs)`, `save(path)`, `DrQV2.load(path)` (pixel tasks)."""

    algo = "drqv2"
    config_cls = DrQConfig
    loss_columns = ("critic_loss", "actor_loss", "critic_q")
    extra_columns = ("std",)

    def __init__(self, env, config: DrQConfig | None = None, env_spec: EnvSpec | None = None, eval_env=None,
                 interface: EnvInterface | None = None):
        config = copy.copy(config) if config is not None else DrQConfig()
        if config.family not in FAMILIES:
            raise ValueError(f"unknown family {config.family!r}; use {', '.join(FAMILIES)}")
        super().__init__(env, config, env_spec, eval_env, interface)
        obs_space, act_space = self.observation_space, self.action_space
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
        self.encoder_opt = adam(self.encoder.parameters(), config.lr)
        self.actor_opt = adam(self.actor.parameters(), config.lr)
        self.critic_opt = adam(self.critic.parameters(), config.lr)
        self.low = torch.as_tensor(act_space.low, dtype=torch.float32, device=self.device)
        self.high = torch.as_tensor(act_space.high, dtype=torch.float32, device=self.device)
        # stacked frames slide by one frame per step: the buffer keeps only each next observation's
        # new frame (a third of the replay's memory less for 3 frames; `sliding_window_of`)
        self.buffer = ReplayBuffer(config.buffer_size, obs_space.shape, act_space.shape, np.float32, seed=config.seed,
                                   n_step=config.n_step, gamma=config.gamma, obs_dtype=np.uint8,
                                   window=self.interface.window)

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
