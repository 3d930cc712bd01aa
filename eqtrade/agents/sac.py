"""Soft Actor-Critic (Haarnoja et al. 2018), CleanRL-style: tanh-Gaussian actor, twin critics
with target networks, automatic entropy tuning; networks from any eqtrade.nn family.

Work removed from the update (bench/bench_agents.py measures it against Stable-Baselines3):
both critics run as one batched forward: plain flat critics are one ensemble MLP (a batched
matmul per layer; not with a relaxed scale axis), per-asset critics are one call of their own
code on the twins' weights stacked [2, ...] (`forward_state`: one product per layer shares the
observations), the other relaxed and flat exact critics are vmapped over stacked parameters;
the targets' actor pass runs without autograd; the actor loss evaluates
the critics with detached parameters, so its backward computes no critic weight gradients;
target updates are one fused lerp.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from ..nn import build_actor, build_critic, build_value
from ..nn.gemm import mlp, mlp_per_run
from ..nn.reps import MethodCall, sub_state, zero_of
from ..util import Range
from .buffer import ReplayBuffer
from ..envs.factory import EnvSpec
from ..envs.protocol import EnvInterface
from .base import Agent, BaseConfig, adam, check_finite, clone_frozen, soft_update


@dataclass
class SACConfig(BaseConfig):
    lr: float = 3e-4
    tau: float = 0.005
    # initial entropy weight α; "auto": chosen at the first update so that the entropy bonus
    # α·E|log π| is `entropy_frac` of the mean |reward| (scaled) in the replay buffer, whatever
    # the number of action dimensions
    alpha_init: float | str = 1.0
    entropy_frac: float = 0.1
    autotune: bool = True
    target_entropy: float | None = None  # default: -action_dim (per dimension: target_entropy_per_dim)
    target_entropy_per_dim: float | None = None  # if set, target entropy = this x action_dim
    # "critic": the standard actor loss E[α log π − Q(s, a)] on a learned Q; "exact": for envs
    # that offer an ExactReward (eqtrade.envs.protocol; the portfolio env), the actor maximises the exact immediate reward of
    # its sampled action plus γ·V(next state with the new weights), and the critic is a state
    # value V(s) trained on those exact rewards (full information instead of bandit feedback)
    actor_loss: str = "critic"

    ranges = {
        "lr": Range(0, lo_open=True, note="the learning rate"),
        "tau": Range(0, 1, lo_open=True, note="target networks' update rate; 1: copy"),
        "alpha_init": Range(0, lo_open=True, note="or \"auto\""),
        "entropy_frac": Range(0, lo_open=True),
        "target_entropy": Range(),
        "target_entropy_per_dim": Range(),
    }


class EnsembleMLP(nn.Module):
    """n plain MLP critics as one network: weights [n, in, out], biases [n, 1, out]; evaluated as
    one autograd node by eqtrade.nn.gemm.mlp, each critic's products by oneDNN's kernels where
    they are large (about 2x torch's on the development machine; a batched product with one
    output column, the last layer, was also ~10x slower there than one product per critic)."""

    @property
    def native_stack(self) -> bool:
        """Whether the runs of a stack evaluate it by `forward_state` (their products one run at
        a time, the same calls as a run alone) rather than by a vmap over `forward`: on the CPU
        (on a GPU one batched product per layer costs K times fewer kernel launches)."""
        return self.weights[0].device.type == "cpu"

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
        """[n, B, 1] from x [B, in] (or [n, B, in]): one autograd node (eqtrade.nn.gemm.mlp), or
        batched products inside a vmap."""
        layers = [(W.detach(), b.detach()) if detach_params else (W, b) for W, b in zip(self.weights, self.biases)]
        return mlp(x, layers, ensemble=True)

    def forward_state(self, t: dict, x: torch.Tensor, xlead: int = 0) -> torch.Tensor:
        """`forward` of the runs of a stack from their tensors `t` (weights.i [*L, n, in, out]):
        [*L, n, B, 1] from x [*L, B, in] (xlead = len(L)) or [B, in] (xlead 0: shared by the
        runs); each run's products are the ones it computes alone."""
        layers = [(t[f"weights.{i}"], t[f"biases.{i}"]) for i in range(len(self.weights))]
        return mlp_per_run(layers, x, xlead, ensemble=True)

    def regularizer(self) -> torch.Tensor:
        return zero_of(self)


class TwinCritic(nn.Module):
    """Two critics Q1, Q2 evaluated together: [2, B, 1]."""

    def __init__(self, q1: nn.Module | None, q2: nn.Module | None, batched: bool, ensemble: EnsembleMLP | None = None):
        super().__init__()
        self.batched = batched
        self.ensemble = ensemble
        # per-asset twins run as one call of plain tensor code on their weights stacked [2, ...]
        # (Value/Critic.forward_state: one product per layer, the observations shared), not a vmap;
        # so does a stack of ensembles (EnsembleMLP.forward_state)
        self._twins_native = bool(getattr(q1, "rows_input", False) and getattr(q1, "native_stack", False))
        if ensemble is not None:
            return
        if batched:
            params, buffers = stack_module_state([q1, q2])
            self.params = nn.ParameterDict({k.replace(".", ":"): nn.Parameter(v) for k, v in params.items()})
            for k, v in buffers.items():
                self.register_buffer("buf_" + k.replace(".", ":"), v)
            self._base = [copy.deepcopy(q1).to("meta")]  # a list: not registered as a submodule
            # a per-asset head with level weights (relaxed scale) has no by-name regulariser below
            self._reg_by_call = bool(getattr(getattr(q1, "head", None), "level_columns", None))
        else:
            self.qs = nn.ModuleList([q1, q2])

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # a state saved by per-twin critics (qs.0.*, qs.1.*: flat exact critics before they
        # were vmapped) loads into the stacked parameters, twin 0 then twin 1
        if self.batched and any(k.startswith(prefix + "qs.") for k in state_dict):
            for key in list(self.params.keys()):
                name = key.replace(":", ".")
                if prefix + f"qs.0.{name}" in state_dict:
                    state_dict[prefix + "params." + key] = torch.stack(
                        [state_dict.pop(prefix + f"qs.{i}.{name}") for i in (0, 1)])
            for key, buf in list(self.named_buffers()):
                name = key[4:].replace(":", ".")
                if key.startswith("buf_") and prefix + f"qs.0.{name}" in state_dict:
                    state_dict[prefix + key] = torch.stack([state_dict.pop(prefix + f"qs.{i}.{name}") for i in (0, 1)])
                elif key.startswith("buf_"):
                    # a buffer the twin does not save (non-persistent: a scale axis's fixed masks)
                    # is saved here: a per-twin state has none, so this one keeps its own
                    state_dict.setdefault(prefix + key, buf)
        # and the other way: a state saved by stacked twins (params.*, buf_*: flat relaxed
        # critics before they became two calls, 2026-12-08) loads into the two critics
        if not self.batched and self.ensemble is None and any(k.startswith(prefix + "params.") for k in state_dict):
            twin_keys = set(self.qs[0].state_dict().keys())
            for k in [k for k in state_dict if k.startswith((prefix + "params.", prefix + "buf_"))]:
                v = state_dict.pop(k)
                name = k[len(prefix):].split(".", 1)[1] if k.startswith(prefix + "params.") else k[len(prefix) + 4:]
                name = name.replace(":", ".")
                if name in twin_keys:  # else a buffer the twin does not save (non-persistent)
                    for i in (0, 1):
                        state_dict[prefix + f"qs.{i}.{name}"] = v[i]
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def stacked_optimizer_state(self, s: dict) -> dict:
        """An Adam state_dict saved over per-twin critics (twin 0's parameters, then twin 1's, each
        in the module's own order) as the state of this critic's stacked parameters (in the
        order of `params`), or one saved over stacked twins as the two critics' (`_load_from_state_dict`
        maps their parameters the same ways); others unchanged."""
        if not self.batched and self.ensemble is not None:
            return s
        if not self.batched:
            return self._per_twin_optimizer_state(s)
        n = len(self.params)
        ids = s["param_groups"][0]["params"] if s.get("param_groups") else []
        if not n or len(s["param_groups"]) != 1 or len(ids) != 2 * n:
            return s
        own = [name for name, _ in self._base[0].named_parameters()]  # a twin's order
        state, out = s["state"], {}
        for j, key in enumerate(self.params.keys()):
            i = own.index(key.replace(":", "."))
            pair = [state.get(ids[i]), state.get(ids[n + i])]
            if all(p is not None for p in pair):
                out[j] = {"step": pair[0]["step"], **{k: torch.stack([p[k] for p in pair])
                                                      for k in pair[0] if k != "step"}}
        group = {**s["param_groups"][0], "params": list(range(n))}
        return {"state": out, "param_groups": [group]}

    def _per_twin_optimizer_state(self, s: dict) -> dict:
        """An Adam state_dict saved over stacked twins (their parameters in a ParameterDict's order
        of the twin's names) as the two critics' (twin 0's parameters, then twin 1's)."""
        own = [name for name, _ in self.qs[0].named_parameters()]
        n = len(own)
        ids = s["param_groups"][0]["params"] if s.get("param_groups") else []
        if not n or len(s["param_groups"]) != 1 or len(ids) != n:
            return s
        # the order the stacked twins' ParameterDict kept their names in
        stacked = [k.replace(":", ".") for k in nn.ParameterDict(
            {name.replace(".", ":"): nn.Parameter(torch.empty(0)) for name in own}).keys()]
        state, out = s["state"], {}
        for j, name in enumerate(stacked):
            i, st = own.index(name), state.get(ids[j])
            if st is not None:
                for t in (0, 1):
                    out[t * n + i] = {"step": st["step"].clone() if torch.is_tensor(st["step"]) else st["step"],
                                      **{k: v[t].clone() for k, v in st.items() if k != "step"}}
        group = {**s["param_groups"][0], "params": list(range(2 * n))}
        return {"state": out, "param_groups": [group]}

    def _names(self) -> tuple[list, list]:
        """(this critic's name, a twin's name) of the stacked parameters and of the buffers
        (batched), or a twin's parameter and buffer names (two calls): fixed, so mapped once."""
        if not hasattr(self, "_pnames"):
            if self.batched:
                self._pnames = [(k, k.replace(":", ".")) for k in self.params.keys()]
                self._bnames = [(k, k[4:].replace(":", ".")) for k, _ in self.named_buffers() if k.startswith("buf_")]
            else:
                self._pnames = [n for n, _ in self.qs[0].named_parameters()]
                self._bnames = [n for n, _ in self.qs[0].named_buffers()]
        return self._pnames, self._bnames

    def _stacked(self, detach: bool):
        pnames, bnames = self._names()
        p = {name: (self.params[k].detach() if detach else self.params[k]) for k, name in pnames}
        b = {name: getattr(self, k) for k, name in bnames}
        return p, b

    def _twin(self) -> nn.Module:
        return self._base[0] if self.batched else self.qs[0]

    def _twin_state(self, t: dict | None = None, xlead: int = 0, detach: bool = False) -> dict:
        """The twins' tensors by a twin's names, stacked on a twin dimension after the first
        `xlead` (t: this critic's tensors by name with `xlead` leading run dimensions, a stack's;
        None: its own)."""
        pnames, bnames = self._names()
        if self.batched:
            if t is None:
                p, b = self._stacked(detach)
                return {**p, **b}
            return {**{name: t["params." + k] for k, name in pnames}, **{name: t[k] for k, name in bnames}}
        if t is None:  # the twins' buffers are their structure (built alike): the first's, broadcast
            params = [dict(q.named_parameters()) for q in self.qs]
            pair = lambda n: [params[i][n].detach() if detach else params[i][n] for i in (0, 1)]  # noqa: E731
            return {**{n: torch.stack(pair(n)) for n in pnames}, **dict(self.qs[0].named_buffers())}
        return {n: torch.stack([t[f"qs.0.{n}"], t[f"qs.1.{n}"]], dim=xlead) for n in pnames + bnames}

    @property
    def native_stack(self) -> bool:
        """Whether a stack evaluates these critics by `forward_state` (see StackedModule)."""
        return self.ensemble.native_stack if self.ensemble is not None else self._twins_native

    def forward_state(self, t: dict, obs: torch.Tensor, action: torch.Tensor | None = None,
                      xlead: int = 0) -> torch.Tensor:
        """`forward` of the runs of a stack from their tensors `t` (this critic's names, `xlead`
        leading run dimensions): [*runs, 2, B, 1] (per-asset twins: `native_stack`)."""
        if self.ensemble is not None:
            x = obs.flatten(xlead + 1)
            x = x if action is None else torch.cat([x, action], dim=-1)
            return self.ensemble.forward_state(sub_state(t, "ensemble."), x, xlead=xlead)
        args = (obs,) if action is None else (obs, action)
        return self._twin().forward_state(self._twin_state(t, xlead), *args, xlead=xlead)

    def regularizer_state(self, t: dict, params, lead) -> torch.Tensor | None:
        """Each run's regulariser [*lead] from a stack's tensors (None: vmap `regularizer`)."""
        lead = tuple(lead)
        if self.ensemble is not None:  # plain critics: no regulariser
            return next(iter(t.values())).new_zeros(lead)
        twin = self._twin_state(t, len(lead))
        pnames, _ = self._names()
        names = [name for k, name in pnames if "params." + k in params] if self.batched else pnames
        r = self._twin().regularizer_state(twin, names, (*lead, 2))
        return None if r is None else r.sum(-1)

    def forward(self, obs: torch.Tensor, action: torch.Tensor | None = None, detach_params: bool = False) -> torch.Tensor:
        """[2, B, 1]: Q1, Q2 of (obs, action), or V1, V2 of obs for state-value critics (action None;
        or, for per-asset value networks, the held weights in its place: `Value.forward`)."""
        args = (obs,) if action is None else (obs, action)
        if self.ensemble is not None:
            return self.ensemble(torch.cat([obs.flatten(1), *args[1:]], dim=1), detach_params)
        if self.native_stack:
            return self._twin().forward_state(self._twin_state(detach=detach_params), *args)
        if self.batched:
            base = self._base[0]
            p, b = self._stacked(detach_params)
            f = lambda pp, bb: functional_call(base, (pp, bb), args)  # noqa: E731
            return vmap(f)(p, b)
        if detach_params:  # no weight gradients: switch them off rather than re-binding parameters
            params = [p for p in self.qs.parameters() if p.requires_grad]
            for p in params:
                p.requires_grad_(False)
            try:
                return torch.stack([q(*args) for q in self.qs])
            finally:
                for p in params:
                    p.requires_grad_(True)
        return torch.stack([q(*args) for q in self.qs])

    def regularizer(self) -> torch.Tensor:
        if self.ensemble is not None:
            return zero_of(self)
        if self.batched:
            if self._reg_by_call:
                # each twin's own regulariser on its slice of the stacked parameters, summed
                # (slower than the sums below)
                call = MethodCall(self._base[0])
                p, b = self._stacked(False)
                return vmap(lambda pp, bb: functional_call(call, ({"m." + k: v for k, v in pp.items()},
                                                                  {"m." + k: v for k, v in bb.items()}),
                                                           ("regularizer",)))(p, b).sum(0)
            # stacked [2, ...]: relaxed weights vary over group elements (last axis), asset
            # embeddings over assets ([2, N, k]: axis 1), scale gains from zero; see RelaxedMLP,
            # AssetEmbedding and eqtrade.nn.scale.ScaleGain
            return sum((v.var(dim=-1, unbiased=False).sum() for k, v in self.params.items()
                        if k.endswith("relaxed_weights")), zero_of(self)) + \
                sum((v.var(dim=1, unbiased=False).sum() for k, v in self.params.items()
                     if k.endswith("embedding:weight") and v.shape[1] > 1), zero_of(self)) + \
                sum((v.pow(2).sum() for k, v in self.params.items() if k.endswith("scale_gain")), zero_of(self))
        return self.qs[0].regularizer() + self.qs[1].regularizer()


class SAC(Agent):
    """SAC with `learn(steps)`, `predict(obs, deterministic=True)`, `save(path)`, `SAC.load(path)`."""

    algo = "sac"
    config_cls = SACConfig
    loss_columns = ("critic_loss", "actor_loss", "reward_entropy_ratio")
    extra_columns = ("alpha",)

    def __init__(self, env, config: SACConfig | None = None, env_spec: EnvSpec | None = None, eval_env=None,
                 interface: EnvInterface | None = None):
        # a copy: the sizes filled in below are this agent's, not the caller's object
        config = dataclasses.replace(config) if config is not None else SACConfig()
        interface = interface if interface is not None else EnvInterface.of(env)
        axis = interface.assets
        if config.encoder and config.encoder.get("kind") == "per_asset":
            # the shared head does not depend on the number of assets: it is the env's (an agent
            # trained on one universe acts on another); the window is part of the head's input
            if axis is None:
                raise ValueError("the per-asset network needs an env with exchangeable assets (an asset axis: "
                                 "the portfolio env); use encoder kind flat")
            window = int(config.encoder.get("window", axis.obs_rows[0]))
            if window != axis.obs_rows[0]:
                raise ValueError(f"the per-asset network reads {window}-day windows; this env has window {axis.obs_rows[0]}")
            config.encoder = dict(config.encoder, window=window, n_assets=axis.n_assets,
                                  horizons=axis.rows_of("horizons"), levels=axis.rows_of("levels"))
        super().__init__(env, config, env_spec, eval_env, interface)
        if not isinstance(self.action_space, spaces.Box):
            raise ValueError(f"SAC needs a continuous (Box) action space, got {self.action_space}; use --algo dqn")
        if config.actor_loss not in ("critic", "exact"):
            raise ValueError(f"actor_loss must be 'critic' or 'exact', got {config.actor_loss!r}")
        self.exact = config.actor_loss == "exact"
        if self.exact:
            self._require_exact_reward("actor_loss='exact'", env, env_spec, "actor_loss='critic'")
        if isinstance(config.alpha_init, str) and config.alpha_init != "auto":
            raise ValueError(f"alpha_init must be a positive number or 'auto', got {config.alpha_init!r}")
        obs_space, act_space = self.observation_space, self.action_space
        sym, fam = self.symmetry, config.family
        # {kind = "flat"} (TOML has no null) is kept in the config and means no encoder
        encoder = None if config.encoder and config.encoder.get("kind") == "flat" else config.encoder
        # relaxed per-asset embeddings are keyed by the env's tickers (another universe maps by name)
        tickers = list(axis.names) if encoder and axis is not None and axis.names else None
        scale = interface.scale
        sizes = dict(hidden=config.hidden, banks=config.banks, encoder=encoder, tickers=tickers, scale=scale)
        self.actor = build_actor(fam, obs_space, act_space, sym, **sizes)
        act_in = 0 if self.exact else int(np.prod(act_space.shape))
        # the ensemble fast path reads every input freely: not for a relaxed scale axis (gains from zero)
        if fam == "plain" and encoder is None and (scale is None or scale.family != "relaxed"):
            in_dim = int(np.prod(obs_space.shape)) + act_in
            self.critic = TwinCritic(None, None, False, EnsembleMLP(in_dim, config.hidden))
        else:
            make = ((lambda: build_value(fam, obs_space, sym, **sizes)) if self.exact
                    else (lambda: build_critic(fam, obs_space, act_space, sym, **sizes)))
            # parameters stacked [2, ...] (vmapped) for relaxed critics with an encoder and exact
            # flat ones (bench_agents.py, Pendulum 2x256: exact SAC 48 -> 68-72 steps/s with C2's
            # one-product layers); flat relaxed critics are two calls since their dense products
            # go to oneDNN outside a vmap (eqtrade.nn.gemm; Pendulum 2x256, one thread: 0.77-0.87x
            # SB3 vmapped, 0.98-1.02x as two calls, bench_agents.py); per-asset critics of every family run as one call either way (native_stack,
            # no vmap); the encoder critics of the other families stay two calls, which a single run
            # does faster (bench_stack.py update --family exact: vmapped 0.78-0.92x at K = 1)
            batched = (fam == "relaxed" and encoder is not None) or (fam == "exact" and encoder is None)
            self.critic = TwinCritic(make(), make(), batched=batched)
        self.critic_target = clone_frozen(self.critic)
        # per-asset networks read an update's observations as rows [B, F, N] in feature-major
        # memory (eqtrade.nn.asset.as_rows), gathered so from the replay buffer and shared by all
        # the update's network calls; the exact actor loss then takes the next book alone from
        # the env (ExactReward.own: the next observation is the stored one with that book)
        self.rows = ((sum(axis.obs_rows), axis.n_assets) if self.actor.rows_input and axis is not None
                     and axis.block_kinds[-1] == "weights" and axis.obs_rows[-1] == 1
                     and (not self.exact or self.exact_reward is None or self.exact_reward.own_dim == axis.n_assets)
                     else None)
        self._to_device("actor", "critic", "critic_target")
        self.actor_opt = adam(self.actor.parameters(), config.lr)
        self.critic_opt = adam(self.critic.parameters(), config.lr)
        act_dim = int(np.prod(act_space.shape))
        self.target_entropy = (config.target_entropy if config.target_entropy is not None
                               else config.target_entropy_per_dim * act_dim if config.target_entropy_per_dim is not None
                               else -float(act_dim))
        self.alpha_pending = config.alpha_init == "auto"  # set from the buffer at the first update
        self.log_alpha = torch.tensor(0.0 if self.alpha_pending else math.log(config.alpha_init), requires_grad=True,
                                      device=self.device)
        self.alpha_opt = adam([self.log_alpha], config.lr)
        low, high = act_space.low.astype(np.float32), act_space.high.astype(np.float32)
        self.act_scale = torch.as_tensor((high - low) / 2, device=self.device)
        self.act_bias = torch.as_tensor((high + low) / 2, device=self.device)
        # the trading envs' observations begin with a window of returns that slides by a day per
        # step: the buffer keeps only the new part of each next observation (about half the memory)
        window = ((axis.obs_rows[0], axis.n_assets) if axis is not None and axis.block_kinds[0] == "returns"
                  and axis.obs_rows[0] > 1 and len(obs_space.shape) == 1 else None)
        self.buffer = ReplayBuffer(config.buffer_size, obs_space.shape, act_space.shape, np.float32,
                                   seed=config.seed, gamma=config.gamma, window=window,
                                   extra_dim=self.exact_reward.extra_dim if self.exact and self.exact_reward else 0)

    # -- policy ---------------------------------------------------------------------------------
    #: the axis of the batch in every tensor of an update: 0 here; 1 in a stack of runs
    #: (eqtrade.agents.stack), where every tensor has a leading run axis. The update below is
    #: written once for both (reductions over the last axes, the twin-critic axis just before the batch)
    batch_dim = 0

    def _sample(self, obs: torch.Tensor, noise: torch.Tensor | None = None):
        mean, log_std = self.actor(obs)
        std = log_std.exp()
        u = mean + std * (self._randn(mean.shape) if noise is None else noise)
        y = torch.tanh(u)
        log_prob = (-0.5 * ((u - mean) / std) ** 2 - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        log_prob = log_prob - (torch.log(self.act_scale * (1 - y.pow(2)) + 1e-6)).sum(-1)
        return y * self.act_scale + self.act_bias, log_prob

    @torch.no_grad()
    def act(self, obs, explore: bool):
        self._fresh()
        single = obs.ndim == len(self.observation_space.shape)
        o = self._obs_tensor(obs)
        if explore and self.step < self.config.learning_starts:
            a = self.rng.uniform(self.action_space.low, self.action_space.high,
                                 size=(o.shape[0], *self.action_space.shape)).astype(np.float32)
        elif explore:
            a = self._sample(o)[0].cpu().numpy()
        else:
            mean, _ = self.actor(o)
            a = (torch.tanh(mean) * self.act_scale + self.act_bias).cpu().numpy()
        return a[0] if single else a

    def policy_module(self):
        self._fresh()
        return self.actor

    # -- update ---------------------------------------------------------------------------------
    def _alpha(self) -> torch.Tensor:
        """α (detached), shaped to multiply per-sample values [..., B]."""
        return self.log_alpha.detach().exp().unsqueeze(-1)

    @torch.no_grad()
    def _auto_alpha(self) -> None:
        """α such that α·E|log π| = entropy_frac·E|reward| over the buffer (the first update)."""
        obs, rewards = self.buffer.head(4096)
        r = torch.as_tensor(np.asarray(np.abs(rewards).mean(-1)), dtype=torch.float64)
        _, logp = self._sample(torch.from_numpy(obs).to(self.device))
        alpha = self.config.entropy_frac * r / logp.abs().mean(-1).double().cpu().clamp_min(1e-6)
        self.log_alpha.copy_(alpha.clamp_min(1e-8).log().to(self.log_alpha))
        self.alpha_pending = False

    def update(self) -> dict[str, float]:
        return self._losses_out(self._update())

    def _update(self) -> dict[str, torch.Tensor]:
        """One update; the losses per run (0-d tensors here, [K] in a stack)."""
        cfg, bd = self.config, self.batch_dim
        if self.alpha_pending:
            self._auto_alpha()
        if self.exact:
            return self._update_exact()
        b = self.buffer.sample(cfg.batch_size, self.device, rows=self.rows)
        obs, next_obs = b["obs"], b["next_obs"]
        alpha = self._alpha()
        n = cfg.batch_size
        # the policy noise of next_obs (targets) and obs (actor loss) drawn as one [2B] draw, as
        # before; the targets' actor pass without autograd: the actor loss's backward then runs
        # over B rows, not over 2B of which half carry no gradient (bench_stack.py profile)
        shape = list(b["actions"].shape)
        shape[bd] = 2 * n
        noise = self._randn(tuple(shape))
        with torch.no_grad():
            next_a, next_logp = self._sample(next_obs, noise.narrow(bd, 0, n))
        a, logp = self._sample(obs, noise.narrow(bd, n, n))
        with torch.no_grad():
            q_next = self.critic_target(next_obs, next_a).min(bd).values.squeeze(-1) - alpha * next_logp
            y = b["rewards"] + b["discount"] * q_next
        critic_loss = self._critic_step(self.critic(obs, b["actions"]).squeeze(-1), y)  # Q: [(K,) 2, B]
        q_pi = self.critic(obs, a, detach_params=True).min(bd).values.squeeze(-1)
        actor_loss = self._actor_step((alpha * logp - q_pi).mean(-1))
        return self._finish(critic_loss, actor_loss, logp, b["rewards"], alpha)

    def _critic_step(self, pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One critic update on the twin predictions [(K,) 2, B] towards targets y [(K,) B] (+
        regulariser); the loss per run (a stack's runs add: each run's gradient is its own)."""
        loss = F.mse_loss(pred, y.unsqueeze(-2).expand_as(pred), reduction="none").mean(-1).sum(-1)
        if self.config.reg_coef:
            loss = loss + self.config.reg_coef * self.critic.regularizer()
        self.critic_opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        self.critic_opt.step()
        return loss.detach()

    def _actor_step(self, loss: torch.Tensor) -> torch.Tensor:
        """One actor update on the per-run `loss` (+ regulariser)."""
        if self.config.reg_coef:
            loss = loss + self.config.reg_coef * self.actor.regularizer()
        self.actor_opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        self.actor_opt.step()
        return loss.detach()

    def _finish(self, critic_loss, actor_loss, logp, rewards, alpha) -> dict[str, torch.Tensor]:
        """α tuned, targets updated; the losses and the reward-to-entropy ratio per run."""
        cfg = self.config
        logp = logp.detach()
        ent = alpha.squeeze(-1) * logp.abs().mean(-1)
        # mean |reward| (scaled) over α·mean |log π|: how much the reward outweighs the entropy bonus
        out = {"critic_loss": critic_loss, "actor_loss": actor_loss,
               "reward_entropy_ratio": rewards.detach().abs().mean(-1) / ent.clamp_min(1e-12)}
        if cfg.autotune:
            alpha_loss = -(self.log_alpha * (logp + self.target_entropy).mean(-1)).sum()
            self.alpha_opt.zero_grad(set_to_none=True)
            alpha_loss.backward()
            self.alpha_opt.step()
        soft_update(self.critic_target, self.critic, cfg.tau)
        return out

    def _losses_out(self, out: dict[str, torch.Tensor]) -> dict[str, float]:
        """The losses of one run as numbers, each checked finite."""
        return {k: check_finite(k.replace("_", " "), v, self.step) if k.endswith("loss") else float(v)
                for k, v in out.items()}

    def _update_exact(self) -> dict[str, torch.Tensor]:
        """Full-information update: the exact reward of the sampled action (differentiable) plus
        γ·V of the next state with the new weights; V is a soft state value trained on the same."""
        cfg, bd = self.config, self.batch_dim
        if self.exact_reward is None:
            raise ValueError("this SAC was loaded to predict: full-information updates need its env (build_env=True)")
        b = self.buffer.sample(cfg.batch_size, self.device, rows=self.rows)
        obs = b["obs"]
        alpha = self._alpha()
        a, logp = self._sample(obs)
        # V(s') of the next state the action leads to: per-asset networks read the stored next
        # rows with the action's book in place of their last row (ExactReward.own: the gradient
        # flows into the book alone); other networks read the env's next observation whole
        if self.rows:
            r, book, alive = self._batched(self.exact_reward.own, obs[..., -1, :], a, b["extras"])
            nxt = (b["next_obs"], book)
        else:
            r, next_obs, alive = self._batched(self.exact_reward, obs, a, b["extras"], b["next_obs"])
            nxt = (next_obs,)
        r = r * cfg.reward_scale
        disc = b["discount"] * alive  # an action that would ruin the portfolio ends its episode
        with torch.no_grad():
            v_next = self.critic_target(*(t.detach() for t in nxt)).min(bd).values.squeeze(-1)
            y = r.detach() + disc * v_next - alpha * logp.detach()
        critic_loss = self._critic_step(self.critic(obs).squeeze(-1), y)  # V: [(K,) 2, B]
        v_pi = self.critic(*nxt, detach_params=True).min(bd).values.squeeze(-1)
        actor_loss = self._actor_step((alpha * logp - r - disc * v_pi).mean(-1))
        return self._finish(critic_loss, actor_loss, logp, r, alpha)

    @staticmethod
    def _batched(fn, *args):
        """The env's batched exact reward (`fn`: the ExactReward or its `own`, which take [B, ...])
        on [(K,) B, ...] tensors: (reward, next observation or own columns, alive) shaped [(K,) B, ...]."""
        lead = args[0].shape[:-1]
        r, nxt, alive = fn(*(t.reshape(-1, t.shape[-1]) for t in args))
        return r.reshape(lead), nxt.reshape(*lead, nxt.shape[-1]), alive.reshape(lead)

    def extra_metrics(self) -> dict[str, float]:
        self._fresh()
        return {"alpha": float(self.log_alpha.detach().exp())}

    # -- persistence ----------------------------------------------------------------------------
    def _state(self) -> dict:
        return {"alpha_pending": self.alpha_pending, "actor": self.actor.state_dict(), "critic": self.critic.state_dict(),
                "critic_target": self.critic_target.state_dict(), "log_alpha": self.log_alpha.detach().clone(),
                "actor_opt": self.actor_opt.state_dict(), "critic_opt": self.critic_opt.state_dict(),
                "alpha_opt": self.alpha_opt.state_dict()}

    def _load_policy_state(self, s: dict) -> None:
        self.actor.load_state_dict(s["actor"])  # the critics are tied to the training universe

    def _load_state(self, s: dict) -> None:
        self.alpha_pending = s["alpha_pending"]
        self.actor.load_state_dict(s["actor"])
        self.critic.load_state_dict(s["critic"])
        self.critic_target.load_state_dict(s["critic_target"])
        with torch.no_grad():
            self.log_alpha.copy_(s["log_alpha"])
        self.actor_opt.load_state_dict(s["actor_opt"])
        self.critic_opt.load_state_dict(self.critic.stacked_optimizer_state(s["critic_opt"]))
        self.alpha_opt.load_state_dict(s["alpha_opt"])
