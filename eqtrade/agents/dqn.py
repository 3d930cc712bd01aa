"""Double DQN (van Hasselt et al. 2016) with a target network (periodic or soft), ε-greedy
exploration on a linear schedule, Huber loss and optional n-step returns; the Q-network from
any eqtrade.nn family (equivariant families permute Q-values with the actions).

`targets = "exact"`: on an env that offers an `ExactReward` (a market that ignores the agent: the
single-asset trading env), every sampled transition gives the exact reward and next state of
every action, and all Q-values are regressed on their own double-DQN targets, not only the
action taken: the counterpart of SAC's `actor_loss = "exact"`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces

from ..nn import build_qnet
from ..util import MAX_STEPS, Range
from .buffer import ReplayBuffer
from ..envs.factory import EnvSpec
from ..envs.protocol import EnvInterface
from .base import Agent, BaseConfig, adam, check_finite, clone_frozen, soft_update


@dataclass
class DQNConfig(BaseConfig):
    lr: float = 1e-3
    tau: float = 1.0  # 1.0: copy every target_update_interval steps; < 1: soft update every update
    target_update_interval: int = 500
    eps_start: float = 1.0
    eps_end: float = 0.05
    exploration_steps: int = 10_000  # environment steps over which ε decays linearly
    n_step: int = 1
    max_grad_norm: float = 10.0
    targets: str = "sampled"  # "exact": every action's target from the env's ExactReward (one-step)

    ranges = {
        "lr": Range(0, lo_open=True, note="the learning rate"),
        "tau": Range(0, 1, lo_open=True, note="1: copy every target_update_interval updates; < 1: soft updates"),
        "target_update_interval": Range(1, MAX_STEPS),
        "eps_start": Range(0, 1), "eps_end": Range(0, 1),
        "exploration_steps": Range(0, MAX_STEPS),
        "n_step": Range(1, 1000),
        "max_grad_norm": Range(0, lo_open=True),
    }


class DQN(Agent):
    """DQN with `learn(steps)`, `predict(obs, deterministic=True)`, `save(path)`, `DQN.load(path)`."""

    algo = "dqn"
    config_cls = DQNConfig
    loss_columns = ("q_loss",)
    extra_columns = ("epsilon",)

    def __init__(self, env, config: DQNConfig | None = None, env_spec: EnvSpec | None = None, eval_env=None,
                 interface: EnvInterface | None = None):
        config = config or DQNConfig()
        super().__init__(env, config, env_spec, eval_env, interface)
        obs_space, act_space = self.observation_space, self.action_space
        if not isinstance(act_space, spaces.Discrete):
            raise ValueError(f"DQN needs a discrete action space, got {act_space}; use --algo sac")
        sizes = dict(hidden=config.hidden, banks=config.banks, encoder=config.encoder)
        self.q = build_qnet(config.family, obs_space, act_space, self.symmetry, **sizes)
        self.q_target = clone_frozen(self.q)
        self._to_device("q", "q_target")
        self.opt = adam(self.q.parameters(), config.lr)
        self.n_actions = int(act_space.n)
        if config.targets not in ("sampled", "exact"):
            raise ValueError(f"targets must be 'sampled' or 'exact', got {config.targets!r}")
        self.exact = config.targets == "exact"
        if self.exact:
            self._require_exact_reward("targets='exact'", env, env_spec, "targets='sampled'")
        if self.exact and config.n_step != 1:
            raise ValueError(f"targets='exact' computes one-step targets from each stored day; n_step must be 1, "
                             f"got {config.n_step}")
        self.buffer = ReplayBuffer(config.buffer_size, obs_space.shape, (), np.int64, seed=config.seed,
                                   n_step=config.n_step, gamma=config.gamma,
                                   extra_dim=self.exact_reward.extra_dim if self.exact and self.exact_reward else 0)
        self.updates = 0

    @property
    def epsilon(self) -> float:
        cfg = self.config
        frac = min(1.0, self.step / max(1, cfg.exploration_steps))
        return cfg.eps_start + frac * (cfg.eps_end - cfg.eps_start)

    @torch.no_grad()
    def act(self, obs, explore: bool):
        self._fresh()
        single = obs.ndim == len(self.observation_space.shape)
        a = self.q(self._obs_tensor(obs)).argmax(1).cpu().numpy()
        if explore:
            rand = self.rng.random(len(a)) < self.epsilon
            a = np.where(rand, self.rng.integers(0, self.n_actions, len(a)), a)
        return int(a[0]) if single else a

    def policy_module(self):
        self._fresh()
        return self.q

    def update(self) -> dict[str, float]:
        return {"q_loss": check_finite("Q loss", self._update(), self.step)}

    def _update(self) -> torch.Tensor:
        """One double-DQN update; the loss per run (0-d here, [K] in a stack of runs, where every
        tensor has a leading run axis: eqtrade.agents.stack)."""
        cfg = self.config
        b = self.buffer.sample(cfg.batch_size, self.device)
        q, y = self._exact_targets(b) if self.exact else self._sampled_targets(b)
        loss = F.smooth_l1_loss(q, y, reduction="none").mean(-1)
        if cfg.reg_coef:
            loss = loss + cfg.reg_coef * self.q.regularizer()
        self.opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        self._clip_grads(cfg.max_grad_norm)
        self.opt.step()
        self.updates += 1
        if cfg.tau < 1.0:
            soft_update(self.q_target, self.q, cfg.tau)
        elif self.updates % cfg.target_update_interval == 0:
            soft_update(self.q_target, self.q, 1.0)
        return loss.detach()

    def _sampled_targets(self, b: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Q of the actions taken and their double-DQN targets, [(K,) B] each."""
        with torch.no_grad():
            best = self.q(b["next_obs"]).argmax(-1, keepdim=True)  # double DQN: online net picks
            q_next = self.q_target(b["next_obs"]).gather(-1, best).squeeze(-1)  # target net evaluates
            y = b["rewards"] + b["discount"] * q_next
        return self.q(b["obs"]).gather(-1, b["actions"].unsqueeze(-1)).squeeze(-1), y

    def _exact_targets(self, b: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Q of every action and its double-DQN target from the exact reward and next state of
        that action (the env's ExactReward on the stored transition), [(K,) B·A] each."""
        cfg, obs, A = self.config, b["obs"], self.n_actions
        *run, n, d = obs.shape

        def each_action(t: torch.Tensor) -> torch.Tensor:  # [(K,) B, c] -> [(K·) B·A, c]
            return t.unsqueeze(-2).expand(*run, n, A, t.shape[-1]).reshape(-1, t.shape[-1])

        with torch.no_grad():
            acts = torch.arange(A, device=obs.device).expand(*run, n, A).reshape(-1)
            r, nxt, alive = self.exact_reward(each_action(obs), acts, each_action(b["extras"]), each_action(b["next_obs"]))
            nxt = nxt.reshape(*run, n * A, d)
            best = self.q(nxt).argmax(-1, keepdim=True)
            q_next = self.q_target(nxt).gather(-1, best).squeeze(-1)
            disc = b["discount"].unsqueeze(-1).expand(*run, n, A).reshape(*run, n * A) * alive.reshape(*run, n * A)
            y = r.reshape(*run, n * A) * cfg.reward_scale + disc * q_next
        return self.q(obs).reshape(*run, n * A), y

    def _clip_grads(self, max_norm: float) -> None:
        torch.nn.utils.clip_grad_norm_(self.q.parameters(), max_norm)

    def extra_metrics(self) -> dict[str, float]:
        return {"epsilon": self.epsilon}

    def _state(self) -> dict:
        return {"q": self.q.state_dict(), "q_target": self.q_target.state_dict(), "opt": self.opt.state_dict(),
                "updates": self.updates}

    def _load_state(self, s: dict) -> None:
        self.q.load_state_dict(s["q"])
        self.q_target.load_state_dict(s["q_target"])
        self.opt.load_state_dict(s["opt"])
        self.updates = s["updates"]
