"""Soft Actor-Critic (Haarnoja et al. 2018), CleanRL-style: tanh-Gaussian actor, twin critics
with target networks, automatic entropy tuning; networks from any eqtrade.nn family.

Work removed from the update (bench/bench_agents.py measures it against Stable-Baselines3):
both critics run as one batched forward: plain critics are one ensemble MLP (a batched matmul
per layer), relaxed critics are vmapped over stacked parameters; the actor runs once per update
on [next_obs; obs] (it does not change between the target and the actor loss); the actor loss evaluates the critics with detached parameters, so
its backward computes no critic weight gradients; target updates are one fused lerp.
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
from torch.func import functional_call, stack_module_state, vmap

from ..nn import build_actor, build_critic
from .buffer import ReplayBuffer
from .common import Agent, BaseConfig, EnvSpec, check_finite, clone_frozen, soft_update


@dataclass
class SACConfig(BaseConfig):
    lr: float = 3e-4
    tau: float = 0.005
    alpha_init: float = 1.0
    autotune: bool = True
    target_entropy: float | None = None  # default: -action_dim


class EnsembleMLP(nn.Module):
    """n plain MLP critics as one network: weights [n, in, out], one batched matmul per layer."""

    def __init__(self, in_dim: int, hidden, n: int = 2):
        super().__init__()
        dims = [in_dim, *hidden, 1]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for a, b in zip(dims[:-1], dims[1:]):
            bound = 1 / math.sqrt(a)  # nn.Linear's default initialisation scale
            self.weights.append(nn.Parameter(torch.empty(n, a, b).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(n, 1, b).uniform_(-bound, bound)))

    def forward(self, x: torch.Tensor, detach_params: bool = False) -> torch.Tensor:
        h = x
        last = len(self.weights) - 1
        for i, (W, b) in enumerate(zip(self.weights, self.biases)):
            if detach_params:
                W, b = W.detach(), b.detach()
            h = torch.baddbmm(b, h.expand(W.shape[0], *h.shape) if h.dim() == 2 else h, W)
            if i < last:
                h = torch.relu(h)
        return h  # [n, B, 1]

    def regularizer(self) -> torch.Tensor:
        return torch.zeros(())


class TwinCritic(nn.Module):
    """Two critics Q1, Q2 evaluated together: [2, B, 1]."""

    def __init__(self, q1: nn.Module | None, q2: nn.Module | None, batched: bool, ensemble: EnsembleMLP | None = None):
        super().__init__()
        self.batched = batched
        self.ensemble = ensemble
        if ensemble is not None:
            return
        if batched:
            params, buffers = stack_module_state([q1, q2])
            self.params = nn.ParameterDict({k.replace(".", ":"): nn.Parameter(v) for k, v in params.items()})
            for k, v in buffers.items():
                self.register_buffer("buf_" + k.replace(".", ":"), v)
            self._base = [copy.deepcopy(q1).to("meta")]  # a list: not registered as a submodule
        else:
            self.qs = nn.ModuleList([q1, q2])

    def _stacked(self, detach: bool):
        # module-path names are fixed: map them once, not on every forward
        if not hasattr(self, "_pnames"):
            self._pnames = [(k, k.replace(":", ".")) for k in self.params.keys()]
            self._bnames = [(k, k[4:].replace(":", ".")) for k, _ in self.named_buffers() if k.startswith("buf_")]
        p = {name: (self.params[k].detach() if detach else self.params[k]) for k, name in self._pnames}
        b = {name: getattr(self, k) for k, name in self._bnames}
        return p, b

    def forward(self, obs: torch.Tensor, action: torch.Tensor, detach_params: bool = False) -> torch.Tensor:
        if self.ensemble is not None:
            return self.ensemble(torch.cat([obs.flatten(1), action], dim=1), detach_params)
        if self.batched:
            base = self._base[0]
            p, b = self._stacked(detach_params)
            f = lambda pp, bb: functional_call(base, (pp, bb), (obs, action))  # noqa: E731
            return vmap(f)(p, b)
        if detach_params:  # no weight gradients: switch them off rather than re-binding parameters
            params = [p for p in self.qs.parameters() if p.requires_grad]
            for p in params:
                p.requires_grad_(False)
            try:
                return torch.stack([q(obs, action) for q in self.qs])
            finally:
                for p in params:
                    p.requires_grad_(True)
        return torch.stack([q(obs, action) for q in self.qs])

    def regularizer(self) -> torch.Tensor:
        if self.ensemble is not None:
            return torch.zeros(())
        if self.batched:
            return sum((v.var(dim=-1, unbiased=False).sum() for k, v in self.params.items()
                        if k.endswith("relaxed_weights")), torch.zeros(()))
        return self.qs[0].regularizer() + self.qs[1].regularizer()


class SAC(Agent):
    """SAC with `learn(steps)`, `predict(obs, deterministic=True)`, `save(path)`, `SAC.load(path)`."""

    algo = "sac"
    config_cls = SACConfig

    def __init__(self, env, config: SACConfig | None = None, env_spec: EnvSpec | None = None, eval_env=None):
        config = config or SACConfig()
        super().__init__(env, config, env_spec, eval_env)
        if not isinstance(env.action_space, spaces.Box):
            raise ValueError(f"SAC needs a continuous (Box) action space, got {env.action_space}; use --algo dqn")
        obs_space, act_space = env.observation_space, env.action_space
        sym, fam = self.symmetry, config.family
        sizes = dict(hidden=config.hidden, banks=config.banks, encoder=config.encoder)
        self.actor = build_actor(fam, obs_space, act_space, sym, **sizes)
        if fam == "plain" and config.encoder is None:
            in_dim = int(np.prod(obs_space.shape)) + int(np.prod(act_space.shape))
            self.critic = TwinCritic(None, None, False, EnsembleMLP(in_dim, config.hidden))
        else:
            self.critic = TwinCritic(build_critic(fam, obs_space, act_space, sym, **sizes),
                                     build_critic(fam, obs_space, act_space, sym, **sizes), batched=fam == "relaxed")
        self.critic_target = clone_frozen(self.critic)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=config.lr, foreach=True)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=config.lr, foreach=True)
        act_dim = int(np.prod(act_space.shape))
        self.target_entropy = config.target_entropy if config.target_entropy is not None else -float(act_dim)
        self.log_alpha = torch.tensor(math.log(config.alpha_init), requires_grad=True)
        self.alpha_opt = torch.optim.Adam([self.log_alpha], lr=config.lr)
        low, high = act_space.low.astype(np.float32), act_space.high.astype(np.float32)
        self.act_scale = torch.as_tensor((high - low) / 2)
        self.act_bias = torch.as_tensor((high + low) / 2)
        self.buffer = ReplayBuffer(config.buffer_size, obs_space.shape, act_space.shape, np.float32,
                                   seed=config.seed, gamma=config.gamma)

    # -- policy ---------------------------------------------------------------------------------
    def _sample(self, obs: torch.Tensor):
        mean, log_std = self.actor(obs)
        std = log_std.exp()
        u = mean + std * torch.randn(mean.shape, generator=self.torch_gen)
        y = torch.tanh(u)
        log_prob = (-0.5 * ((u - mean) / std) ** 2 - log_std - 0.5 * math.log(2 * math.pi)).sum(1)
        log_prob = log_prob - (torch.log(self.act_scale * (1 - y.pow(2)) + 1e-6)).sum(1)
        return y * self.act_scale + self.act_bias, log_prob

    @torch.no_grad()
    def act(self, obs, explore: bool):
        single = obs.ndim == len(self.env.observation_space.shape)
        o = torch.as_tensor(np.asarray(obs, dtype=np.float32)).reshape(-1, *self.env.observation_space.shape)
        if explore and self.step < self.config.learning_starts:
            a = self.rng.uniform(self.env.action_space.low, self.env.action_space.high,
                                 size=(o.shape[0], *self.env.action_space.shape)).astype(np.float32)
        elif explore:
            a = self._sample(o)[0].numpy()
        else:
            mean, _ = self.actor(o)
            a = (torch.tanh(mean) * self.act_scale + self.act_bias).numpy()
        return a[0] if single else a

    def policy_module(self):
        return self.actor

    # -- update ---------------------------------------------------------------------------------
    def update(self) -> dict[str, float]:
        cfg = self.config
        b = self.buffer.sample(cfg.batch_size)
        alpha = self.log_alpha.exp().detach()
        n = cfg.batch_size
        # one actor forward for next_obs (targets) and obs (actor loss): the actor does not change
        # in between, and one pass over 2B rows costs less than two over B
        a_all, logp_all = self._sample(torch.cat([b["next_obs"], b["obs"]]))
        next_a, next_logp = a_all[:n].detach(), logp_all[:n].detach()
        a, logp = a_all[n:], logp_all[n:]
        with torch.no_grad():
            q_next = self.critic_target(b["next_obs"], next_a).min(0).values.squeeze(-1) - alpha * next_logp
            y = b["rewards"] + b["discount"] * q_next
        q = self.critic(b["obs"], b["actions"]).squeeze(-1)  # [2, B]
        critic_loss = F.mse_loss(q, y.expand_as(q), reduction="none").mean(1).sum()
        if cfg.reg_coef:
            critic_loss = critic_loss + cfg.reg_coef * self.critic.regularizer()
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_opt.step()

        q_pi = self.critic(b["obs"], a, detach_params=True).min(0).values.squeeze(-1)
        actor_loss = (alpha * logp - q_pi).mean()
        if cfg.reg_coef:
            actor_loss = actor_loss + cfg.reg_coef * self.actor.regularizer()
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_opt.step()

        out = {"critic_loss": check_finite("critic loss", critic_loss, self.step),
               "actor_loss": check_finite("actor loss", actor_loss, self.step)}
        if cfg.autotune:
            alpha_loss = -(self.log_alpha * (logp.detach() + self.target_entropy)).mean()
            self.alpha_opt.zero_grad(set_to_none=True)
            alpha_loss.backward()
            self.alpha_opt.step()
        soft_update(self.critic_target, self.critic, cfg.tau)
        return out

    def extra_metrics(self) -> dict[str, float]:
        return {"alpha": float(self.log_alpha.detach().exp())}

    # -- persistence ----------------------------------------------------------------------------
    def _state(self) -> dict:
        return {"actor": self.actor.state_dict(), "critic": self.critic.state_dict(),
                "critic_target": self.critic_target.state_dict(), "log_alpha": self.log_alpha.detach().clone(),
                "actor_opt": self.actor_opt.state_dict(), "critic_opt": self.critic_opt.state_dict(),
                "alpha_opt": self.alpha_opt.state_dict()}

    def _load_state(self, s: dict) -> None:
        self.actor.load_state_dict(s["actor"])
        self.critic.load_state_dict(s["critic"])
        self.critic_target.load_state_dict(s["critic_target"])
        with torch.no_grad():
            self.log_alpha.copy_(s["log_alpha"])
        self.actor_opt.load_state_dict(s["actor_opt"])
        self.critic_opt.load_state_dict(s["critic_opt"])
        self.alpha_opt.load_state_dict(s["alpha_opt"])
