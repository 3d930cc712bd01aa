"""Many SAC (or DQN) runs in one process: K independent runs of one shape trained as one batched program.

The networks of K runs (seeds; folds or other settings that keep every tensor's shape) are
stacked along a leading run axis and evaluated as one batched program: the per-asset networks
(the portfolio defaults) by their own code on the stacked tensors (`forward_state`: batched
matrix products, no vmap, whose per-op overhead cost more than the arithmetic on these small
networks), the flat plain MLPs and twin critics on the CPU by each run's own products one run at
a time (`forward_state` too: the products a run computes alone, oneDNN's for the large ones,
eqtrade.nn.gemm; so those stacks are bitwise their runs alone), every other network by
`torch.func.vmap` over its forward; their optimisers, entropy
weights and target networks are stacked the same way, and the update is SAC's own (`SAC._update`
is written once for a batch with or without the run axis). What stays per run is what makes it
independent: its env, its replay buffer, its random streams (exploration, buffer sampling and
policy noise draw from the run's own generators in the order a run alone draws them) and its
callbacks. Each run keeps its ordinary agent object: after training (and whenever a callback
reads it: an evaluation, a checkpoint) the stacked tensors are copied back into it, so every run
directory is an ordinary one, and `backtest`, `compare` and `--resume` work on it unchanged.

Adam is elementwise, so the stacked optimiser steps each run exactly as its own would; the
only differences from a run trained alone come from batched matrix products summing in another
order (bitwise equal for the plain and relaxed networks here, about 1e-7 for the exact family's
Fourier layers; tests/test_stack.py measures it).
"""

from __future__ import annotations

import copy
from typing import Sequence

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from ..envs.rollout import Episode, rollout_many
from ..util import keep_freed_memory
from .buffer import ReplayBuffer, to_device
from .base import TrainingDiverged, check_finite, checkpoints_first, ctrl_c_stops
from .callbacks import EvalCallback
from .dqn import DQN
from ..nn.reps import MethodCall
from .sac import SAC

#: agent options that may differ between the runs of a stack: none changes a tensor's shape or
#: the update's arithmetic (hyperparameters such as the learning rate would need per-run optimisers)
PER_RUN_OPTIONS = ("seed",)


class StackedModule(nn.Module):
    """K modules of one architecture as one: parameters and buffers stacked on a leading run axis,
    inputs [K, ...] give outputs [K, ...]: `forward` (and `regularizer`) by the module's
    `forward_state` on the stacked tensors where it has one (`native_stack`: the per-asset
    networks and their twin critics; on the CPU the flat plain MLPs and twin critics), else
    vmapped over the run axis."""

    def __init__(self, modules: Sequence[nn.Module]):
        super().__init__()
        modules = list(modules)
        params, buffers = stack_module_state(modules)
        grads = dict(modules[0].named_parameters())
        self.params = nn.ParameterDict({k.replace(".", ":"): nn.Parameter(v.detach().clone(),
                                                                           requires_grad=grads[k].requires_grad)
                                        for k, v in params.items()})
        self._pnames = [(k.replace(".", ":"), "m." + k) for k in params]
        self._bnames = []
        for k, v in buffers.items():
            self.register_buffer("b_" + k.replace(".", ":"), v.detach().clone())
            self._bnames.append(("b_" + k.replace(".", ":"), "m." + k))
        self._base = [MethodCall(copy.deepcopy(modules[0]))]  # a list: not registered as a submodule

    def _state(self, detach: bool):
        p = {name: (self.params[k].detach() if detach else self.params[k]) for k, name in self._pnames}
        return p, {name: getattr(self, k) for k, name in self._bnames}

    def _tensors(self, detach: bool) -> dict:
        """The stacked parameters and buffers by the wrapped module's names."""
        p, b = self._state(detach)
        return {name[2:]: v for d in (p, b) for name, v in d.items()}

    def forward(self, *args, detach_params: bool = False, **kwargs):
        base = self._base[0]
        if getattr(base.m, "native_stack", False):  # plain batched tensor code on the stacked tensors
            return base.m.forward_state(self._tensors(detach_params), *args, xlead=1, **kwargs)
        p, b = self._state(detach_params)
        return vmap(lambda pp, bb, *a: functional_call(base, (pp, bb), ("forward", *a), kwargs))(p, b, *args)

    def regularizer(self) -> torch.Tensor:
        """Each run's regulariser: [K]."""
        base = self._base[0]
        if getattr(base.m, "native_stack", False):
            K = next(iter(self.params.values())).shape[0]
            r = base.m.regularizer_state(self._tensors(False), [name[2:] for _, name in self._pnames], (K,))
            if r is not None:
                return r
        p, b = self._state(False)
        return vmap(lambda pp, bb: functional_call(base, (pp, bb), ("regularizer",)))(p, b)

    @torch.no_grad()
    def write_into(self, k: int, module: nn.Module) -> None:
        """Copy run k's parameters and buffers into `module` (one of the stacked architecture)."""
        own_p, own_b = dict(module.named_parameters()), dict(module.named_buffers())
        for key, name in self._pnames:
            own_p[name[2:]].copy_(self.params[key][k])
        for key, name in self._bnames:
            own_b[name[2:]].copy_(getattr(self, key)[k])

    def param_list(self) -> list[torch.Tensor]:
        """The stacked parameters in the wrapped module's `parameters()` order (an optimiser's)."""
        return [self.params[k] for k, _ in self._pnames]


def _stack_adam(opts: Sequence[torch.optim.Optimizer], stacked: list[torch.Tensor], lr: float) -> torch.optim.Adam:
    """One Adam over stacked parameters, its kernel the runs' own (fused, or foreach in runs resumed
    from checkpoints written before: the same arithmetic as each run alone), its state stacked
    from theirs (a resumed stack)."""
    kinds = {(g.get("fused"), g.get("foreach")) for o in opts for g in o.param_groups}
    if len(kinds) > 1:
        raise ValueError("runs whose optimisers differ in kind (fused or foreach Adam: resumed from checkpoints of "
                         "different versions) do not stack: resume them one at a time")
    fused, foreach = kinds.pop()
    opt = torch.optim.Adam(stacked, lr=lr, fused=fused, foreach=foreach)
    states = [o.state_dict()["state"] for o in opts]
    for i, p in enumerate(stacked):
        per = [s.get(i) for s in states]
        if all(s is None for s in per):
            continue
        if any(s is None for s in per) or len({float(s["step"]) for s in per}) > 1:
            raise ValueError("the runs of a stack must be at the same optimiser step (resume runs that stopped together)")
        opt.state[p] = {"step": per[0]["step"].clone(),
                        "exp_avg": torch.stack([s["exp_avg"] for s in per]).reshape(p.shape),
                        "exp_avg_sq": torch.stack([s["exp_avg_sq"] for s in per]).reshape(p.shape)}
    return opt


def _unstack_adam(opt: torch.optim.Adam, stacked: list[torch.Tensor], k: int, into: torch.optim.Optimizer) -> None:
    """Run k's part of a stacked Adam's state into that run's own optimiser."""
    own = [p for g in into.param_groups for p in g["params"]]
    for p, q in zip(stacked, own):
        s = opt.state.get(p)
        if not s:
            continue
        into.state[q] = {"step": s["step"].clone(), "exp_avg": s["exp_avg"][k].clone().reshape(q.shape),
                         "exp_avg_sq": s["exp_avg_sq"][k].clone().reshape(q.shape)}


class StackedBuffer:
    """The runs' own replay buffers, sampled together: each with its own random stream, the
    batch stacked on a leading run axis."""

    def __init__(self, buffers):
        self.buffers = list(buffers)

    def __len__(self) -> int:
        return len(self.buffers[0])

    def head(self, n: int):
        obs, rewards = zip(*(b.head(n) for b in self.buffers))
        return np.stack(obs), np.stack(rewards)

    def sample(self, batch_size: int, device=None, rows: tuple[int, int] | None = None) -> dict[str, torch.Tensor]:
        return to_device(ReplayBuffer.sample_stacked(self.buffers, batch_size, rows), device)


def _seeds(agents: Sequence) -> str:
    """'seed 3' or 'seeds 0,1,2' of these runs."""
    return f"seed{'s' * (len(agents) > 1)} {','.join(str(a.config.seed) for a in agents)}"


def check_stackable(agents: Sequence, folder: str | None = None) -> None:
    """A clear error unless the agents can train as one stack: SAC, the same options but the
    per-run ones, the same spaces, the same step (resumed runs included). folder: the stack's
    folder (`train --seeds --out DIR`), named in the commands the errors suggest."""
    stack_dir = folder or "DIR"
    if not agents:
        raise ValueError("a stack needs at least one run")
    for a in agents:
        if type(a) not in (SAC, DQN):
            raise ValueError(f"only SAC and DQN runs stack (got {a.algo}): train {a.algo} runs one at a time "
                             "(--seed S, not --seeds)")
        if a.env is None:
            raise ValueError("a run loaded to predict (no env) cannot train in a stack")
    a0 = agents[0]
    if len({type(a) for a in agents}) > 1:
        raise ValueError(f"runs of different algorithms do not stack ({', '.join(sorted({a.algo for a in agents}))})")
    c0 = a0.config.to_dict()
    for a in agents[1:]:
        c = a.config.to_dict()
        diff = sorted(k for k in c if k not in PER_RUN_OPTIONS and c[k] != c0[k])
        if diff:
            k = diff[0]
            groups: dict = {}
            for b in agents:
                groups.setdefault(repr(b.config.to_dict()[k]), []).append(b)
            cmds = "; ".join(f"eqtrade train --resume --out {stack_dir} --seeds "
                             f"{','.join(str(b.config.seed) for b in g)}{',' * (len(g) == 1)}" for g in groups.values())
            raise ValueError(f"runs with different [agent] {', '.join(diff)} do not stack ("
                             + ", ".join(f"{k} = {v} in {_seeds(g)}" for v, g in groups.items())
                             + f"): their networks or updates differ; only {', '.join(PER_RUN_OPTIONS)} may differ "
                             f"within a stack (train or resume each as its own stack: {cmds})")
        if a.observation_space.shape != a0.observation_space.shape or a.action_space.shape != a0.action_space.shape:
            raise ValueError(f"runs on envs of different shapes do not stack: observations {a0.observation_space.shape} "
                             f"and {a.observation_space.shape}, actions {a0.action_space.shape} and {a.action_space.shape}")
    steps = sorted({a.step for a in agents})
    if len(steps) > 1:
        at = {st: [a.config.seed for a in agents if a.step == st] for st in steps}
        where = "; ".join(f"seed{'s' * (len(v) > 1)} {','.join(map(str, v))} at step {st}" for st, v in at.items())
        behind = [a.config.seed for a in agents if a.step < steps[-1]]
        raise ValueError(f"the runs of a stack must be at the same step: {where}. Bring the others to step {steps[-1]} "
                         f"first (eqtrade train --resume --out {stack_dir} --seeds {','.join(map(str, behind))}"
                         f"{',' * (len(behind) == 1)} --steps {steps[-1]}), then resume the stack")


class StackedSAC(SAC):
    """The stacked learner of K SAC runs: SAC's update on tensors with a leading run axis
    (`batch_dim` 1); the runs' agents hold everything per run."""

    batch_dim = 1

    def __init__(self, agents: Sequence[SAC]):  # noqa: D107 - not SAC.__init__: the runs are built
        check_stackable(agents)
        a0 = agents[0]
        self.agents = list(agents)
        self.config, self.exact, self.exact_reward = a0.config, a0.exact, a0.exact_reward
        self.device, self.interface, self.rows = a0.device, a0.interface, a0.rows
        self.observation_space, self.action_space = a0.observation_space, a0.action_space
        self.act_scale, self.act_bias, self.target_entropy = a0.act_scale, a0.act_bias, a0.target_entropy
        self.actor = StackedModule([a.actor for a in agents]).to(self.device)
        self.critic = StackedModule([a.critic for a in agents]).to(self.device)
        self.critic_target = StackedModule([a.critic_target for a in agents]).to(self.device)
        lr = self.config.lr
        self.actor_opt = _stack_adam([a.actor_opt for a in agents], self.actor.param_list(), lr)
        self.critic_opt = _stack_adam([a.critic_opt for a in agents], self.critic.param_list(), lr)
        self.log_alpha = torch.stack([a.log_alpha.detach() for a in agents]).requires_grad_(True)
        self.alpha_opt = _stack_adam([a.alpha_opt for a in agents], [self.log_alpha], lr)
        self.buffer = StackedBuffer([a.buffer for a in agents])
        # runs warm-started from checkpoints of different stages may differ in whether their
        # entropy weight is still to be set from the buffer ("auto"): each run's own, see _auto_alpha
        self.pending = [a.alpha_pending for a in agents]
        self.step = a0.step
        self.dirty = [False] * len(agents)

    @torch.no_grad()
    def _auto_alpha(self) -> None:
        """Each pending run's entropy weight set by its own agent, as a run alone sets it (its
        buffer, its actor, its noise stream); the other runs keep theirs."""
        for k, a in enumerate(self.agents):
            if self.pending[k]:
                self.pull(a)
                a._auto_alpha()
                self.log_alpha[k] = a.log_alpha.detach()
        self.pending = [False] * len(self.agents)

    @property
    def alpha_pending(self) -> bool:
        """Whether any run's entropy weight is still to be set (SAC._update asks)."""
        return any(self.pending)

    def _randn(self, shape) -> torch.Tensor:
        """Each run's noise from its own generator, in the shape a run alone draws."""
        return torch.stack([a._randn(tuple(shape[1:])) for a in self.agents])

    def update(self) -> list[dict[str, float]]:
        self.step = self.agents[0].step
        out = self._update()
        self.dirty = [True] * len(self.agents)
        rows = []
        for k, a in enumerate(self.agents):
            try:
                rows.append(a._losses_out({n: v[k] for n, v in out.items()}))
            except TrainingDiverged as e:
                raise TrainingDiverged(f"run {k} of the stack (seed {a.config.seed}): {e}") from None
        return rows

    @torch.no_grad()
    def act_all(self, obs: np.ndarray, explore: bool) -> np.ndarray:
        """Actions [K, *action] of every run for observations [K, *obs] (each run's own way of acting)."""
        if explore and self.agents[0].step < self.config.learning_starts:  # each run's own random stream
            return np.stack([a.rng.uniform(self.action_space.low, self.action_space.high,
                                           size=(1, *self.action_space.shape)).astype(np.float32)[0]
                             for a in self.agents])
        o = torch.as_tensor(np.asarray(obs, dtype=np.float32), device=self.device).reshape(
            len(self.agents), -1, *self.observation_space.shape)
        if explore:
            a = self._sample(o)[0]
        else:
            mean, _ = self.actor(o)
            a = torch.tanh(mean) * self.act_scale + self.act_bias
        return a.cpu().numpy()[:, 0]

    @torch.no_grad()
    def pull(self, agent: SAC) -> None:
        """Copy a run's part of the stack into its agent (networks, optimisers, α), if it changed."""
        k = self.agents.index(agent)
        if not self.dirty[k]:
            return
        self.actor.write_into(k, agent.actor)
        self.critic.write_into(k, agent.critic)
        self.critic_target.write_into(k, agent.critic_target)
        _unstack_adam(self.actor_opt, self.actor.param_list(), k, agent.actor_opt)
        _unstack_adam(self.critic_opt, self.critic.param_list(), k, agent.critic_opt)
        _unstack_adam(self.alpha_opt, [self.log_alpha], k, agent.alpha_opt)
        agent.log_alpha.copy_(self.log_alpha[k])
        agent.alpha_pending = self.pending[k]
        self.dirty[k] = False


class StackedDQN(DQN):
    """The stacked learner of K DQN runs: DQN's update (`DQN._update`, written for a leading run
    axis too) on the stacked Q-networks, each run's gradient clipped by its own norm, each run's
    ε-greedy draws from its own stream."""

    def __init__(self, agents: Sequence[DQN]):  # noqa: D107 - not DQN.__init__: the runs are built
        check_stackable(agents)
        a0 = agents[0]
        self.agents = list(agents)
        self.config, self.device = a0.config, a0.device
        self.exact, self.exact_reward = a0.exact, a0.exact_reward
        self.observation_space, self.action_space, self.n_actions = a0.observation_space, a0.action_space, a0.n_actions
        self.q = StackedModule([a.q for a in agents]).to(self.device)
        self.q_target = StackedModule([a.q_target for a in agents]).to(self.device)
        self.opt = _stack_adam([a.opt for a in agents], self.q.param_list(), self.config.lr)
        self.buffer = StackedBuffer([a.buffer for a in agents])
        if len({a.updates for a in agents}) > 1:
            raise ValueError("the runs of a stack must be at the same update (resume runs that stopped together)")
        self.updates = a0.updates
        self.step = a0.step
        self.dirty = [False] * len(agents)

    def update(self) -> list[dict[str, float]]:
        self.step = self.agents[0].step
        loss = self._update()
        self.dirty = [True] * len(self.agents)
        rows = []
        for k, a in enumerate(self.agents):
            a.updates = self.updates
            try:
                rows.append({"q_loss": check_finite("Q loss", loss[k], a.step)})
            except TrainingDiverged as e:
                raise TrainingDiverged(f"run {k} of the stack (seed {a.config.seed}): {e}") from None
        return rows

    @torch.no_grad()
    def _clip_grads(self, max_norm: float) -> None:
        """torch.nn.utils.clip_grad_norm_ of each run on its own parameters' gradients."""
        grads = [p.grad for p in self.q.param_list() if p.grad is not None]
        K = len(self.agents)
        norms = torch.stack([torch.linalg.vector_norm(g.reshape(K, -1), dim=1) for g in grads], dim=1)  # [K, P]
        coef = (max_norm / (torch.linalg.vector_norm(norms, dim=1) + 1e-6)).clamp(max=1.0)
        for g in grads:
            g.mul_(coef.view(K, *([1] * (g.ndim - 1))))

    @torch.no_grad()
    def act_all(self, obs: np.ndarray, explore: bool) -> np.ndarray:
        """Actions [K] of every run for observations [K, *obs]: greedy, then (exploring) each run's
        ε-greedy draws from its own stream in the order a run alone draws them."""
        o = torch.as_tensor(np.asarray(obs, dtype=np.float32), device=self.device).reshape(
            len(self.agents), -1, *self.observation_space.shape)
        a = self.q(o).argmax(-1).cpu().numpy()[:, 0]
        if explore:
            for k, agent in enumerate(self.agents):
                rand = agent.rng.random(1)[0] < agent.epsilon  # both draws, in DQN.act's order
                other = agent.rng.integers(0, self.n_actions, 1)[0]
                if rand:
                    a[k] = other
        return a

    @torch.no_grad()
    def pull(self, agent: DQN) -> None:
        """Copy a run's part of the stack into its agent (networks, optimiser), if it changed."""
        k = self.agents.index(agent)
        if not self.dirty[k]:
            return
        self.q.write_into(k, agent.q)
        self.q_target.write_into(k, agent.q_target)
        _unstack_adam(self.opt, self.q.param_list(), k, agent.opt)
        agent.updates = self.updates
        self.dirty[k] = False


def stack_of(agents: Sequence) -> StackedSAC | StackedDQN:
    """The stacked learner of K runs of one algorithm (its constructor refuses runs that cannot stack)."""
    return StackedDQN(agents) if agents and isinstance(agents[0], DQN) else StackedSAC(agents)


def _batched_evaluations(stack: StackedSAC | StackedDQN, callbacks: Sequence[Sequence]) -> None:
    """At a step where the runs evaluate, run every run's evaluation rollouts together (one
    batched policy over the K episodes of each rollout) and hand each run's evaluation callback
    its result; runs whose evaluations differ in plan evaluate on their own."""
    evs = [next((cb for cb in cbs if isinstance(cb, EvalCallback)), None) for cbs in callbacks]
    if any(ev is None for ev in evs) or not all(ev.due(a) for ev, a in zip(evs, stack.agents)):
        return
    plans = [ev.plan(a) for ev, a in zip(evs, stack.agents)]
    if len({tuple((name, seed) for name, _, seed in p) for p in plans}) > 1:
        return
    results: list[dict[str, list[Episode]]] = [{} for _ in plans]
    for j, (name, _, seed) in enumerate(plans[0]):
        episodes = rollout_many(lambda obs: stack.act_all(obs, explore=False), [p[j][1] for p in plans], seed=seed)
        for k, ep in enumerate(episodes):
            results[k].setdefault(name, []).append(ep)
    for ev, a, res in zip(evs, stack.agents, results):
        ev.prefill(a, res)


def learn_stack(agents: Sequence, total_steps: int, callbacks: Sequence[Sequence]) -> list:
    """Train K SAC (or K DQN) runs as one stack until `total_steps` each; `callbacks[k]` are run k's (as
    `Agent.learn_with` takes them: evaluation, metrics.csv, progress, checkpoints). Ctrl-C stops
    every run at the same whole step and each run's checkpoint callback saves it."""
    agents = list(agents)
    if len(callbacks) != len(agents):
        raise ValueError(f"{len(agents)} runs but {len(callbacks)} callback lists")
    keep_freed_memory()
    stack = stack_of(agents)
    records_extras = agents[0].buffer.extras is not None
    for a in agents:
        a._stack = stack
    for a, cbs in zip(agents, callbacks):
        if a.obs is None:
            a.obs, _ = a.env.reset(seed=a.config.seed)
        for cb in cbs:
            cb.on_start(a, total_steps)
    status = "failed"
    try:
        with ctrl_c_stops() as stop:
            while agents[0].step < total_steps:
                if stop.requested:
                    raise KeyboardInterrupt
                actions = stack.act_all(np.stack([a.obs for a in agents]), explore=True)
                rows = [a._env_step(actions[k], records_extras) for k, a in enumerate(agents)]
                if agents[0]._update_due():
                    for _ in range(stack.config.gradient_steps):
                        for a, losses in zip(agents, stack.update()):
                            a.last_losses = losses
                _batched_evaluations(stack, callbacks)
                for a, cbs, row in zip(agents, callbacks, rows):
                    a._step_callbacks(cbs, row)
        status = "done"
    except (KeyboardInterrupt, SystemExit):  # SystemExit: Ray Tune stopping a sweep's trial at its report
        status = "interrupted"
        raise
    finally:
        try:
            with checkpoints_first(status, f"the checkpoints of all {len(agents)} runs"):
                for a, cbs in zip(agents, callbacks):
                    for cb in cbs:
                        cb.on_end(a, status)
        finally:
            for a in agents:
                stack.pull(a)
                a._stack = None
    return agents
