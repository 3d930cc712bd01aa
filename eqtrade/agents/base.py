"""What SAC, DQN and DrQ-v2 share: the options every algorithm has, and the training loop.

The loop knows an env only through the contract of `eqtrade.envs.protocol` (spaces, Symmetry,
ExactReward, episode state). What happens around learning (evaluation and the best checkpoint,
checkpoints, metrics.csv, progress, a sweep's reports) plugs in as callbacks
(`eqtrade.agents.callbacks`), so the loop below reads top to bottom.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import signal
import sys
import threading
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, ClassVar, Sequence

import gymnasium as gym
import numpy as np
import torch

from ..envs.factory import EnvSpec
from ..envs.protocol import EnvInterface, episode_state, restore_episode
from ..util import MAX_STEPS, SEED_MAX, Range, keep_freed_memory
from . import checkpoint as ckpt

log = logging.getLogger(__name__)


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


def resolve_device(name: str = "auto") -> torch.device:
    """The torch device for `--device`: "auto" (CUDA when torch sees one, else the CPU), "cpu",
    "cuda" or "cuda:N"; a clear error when CUDA is asked for and there is none."""
    name = str(name).strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or (name.startswith("cuda:") and name[5:].isdigit()):
        if not torch.cuda.is_available():
            why = "built without CUDA" if torch.version.cuda is None else "no GPU is visible"
            raise ValueError(f"device {name!r}: torch {torch.__version__} sees no CUDA device ({why}); "
                             "use --device auto or cpu")
        dev = torch.device(name)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {name!r}: torch sees {torch.cuda.device_count()} CUDA device(s)")
        return dev
    raise ValueError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N")


class _Stop:
    requested = False


#: the signals that stop a training loop at a whole step: Ctrl-C, and what `kill`, `timeout` and
#: job schedulers send
STOP_SIGNALS = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM") if hasattr(signal, n))


@contextmanager
def ctrl_c_stops():
    """While a training loop runs: the first Ctrl-C (or SIGTERM) only asks it to stop
    (`.requested`), so that it finishes the step in progress and stops at the loop's top, where
    the state is whole and the checkpoint resumes exactly; a second one stops at once. Outside
    the main thread (no signal handlers there) it does nothing."""
    stop = _Stop()
    prev = {}
    if threading.current_thread() is threading.main_thread():
        def on_signal(signum, frame):
            if stop.requested:
                raise KeyboardInterrupt
            stop.requested = True

        prev = {sig: signal.signal(sig, on_signal) for sig in STOP_SIGNALS}
    try:
        yield stop
    finally:
        for sig, handler in prev.items():
            signal.signal(sig, handler)


@contextmanager
def checkpoints_first(status: str, what: str = "the checkpoint"):
    """While a training loop's last checkpoints are written (every run's, in a stack) after it
    ended with `status`: Ctrl-C and SIGTERM wait until they are all written (said once on stderr),
    then stop the program (a KeyboardInterrupt, where the loop finished; an interrupted or failed
    loop's own exception goes on); so a second Ctrl-C cannot leave some runs of a stack saved and
    the others not. Outside the main thread it does nothing."""
    got: list[int] = []
    prev = {}
    if threading.current_thread() is threading.main_thread():
        def on_signal(signum, frame):
            if not got:
                print(f"writing {what} first (a few seconds); kill -9 {os.getpid()} stops at once, "
                      "losing what is not yet written", file=sys.stderr, flush=True)
            got.append(signum)

        prev = {sig: signal.signal(sig, on_signal) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in prev.items():
            signal.signal(sig, handler)
    if got and status == "done":
        raise KeyboardInterrupt


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


#: the most hidden layers an agent's networks may have (`hidden` lists one width per layer): these
#: networks have one to a few; a list far longer is a mistake that would build for minutes in silence
MAX_HIDDEN_LAYERS = 64


@dataclass
class BaseConfig:
    """Options common to SAC, DQN and DrQ-v2 (see the algorithm configs for the rest)."""

    family: str = "plain"
    seed: int = 0
    hidden: tuple = (256, 256)
    banks: int = 2
    encoder: dict | None = None
    reg_coef: float = 1e-3  # weight of the relaxed regulariser Σ Var_h w in the losses (one default, CLI and API)
    reward_scale: float = 1.0  # rewards are multiplied by this for learning only; evaluations report them unscaled
    gamma: float = 0.99
    batch_size: int = 256
    buffer_size: int = 1_000_000
    learning_starts: int = 1000
    train_freq: int = 1
    gradient_steps: int = 1
    eval_every: int = 5000
    eval_episodes: int = 5
    checkpoint_every: int = 10000
    device: str = "auto"  # auto (CUDA when torch sees one), cpu, cuda, cuda:N; checkpoints load on any

    #: the allowed values of the numeric options (a tuple option: of each element); each algorithm
    #: config adds its own (`option_ranges` joins them), checked on every construction
    ranges: ClassVar[dict[str, Range]] = {
        "seed": Range(0, SEED_MAX),
        "hidden": Range(1, 65536, note="units per hidden layer"),
        "banks": Range(1, 1024, note="kernel banks of the relaxed layers"),
        "reg_coef": Range(0, note="0: no regulariser"),
        "reward_scale": Range(0, lo_open=True),
        "gamma": Range(0, 1, hi_open=True, note="the discount factor"),
        "batch_size": Range(1, 1_000_000),
        "buffer_size": Range(1, MAX_STEPS, note="transitions kept; at least batch_size"),
        "learning_starts": Range(0, MAX_STEPS, note="random-action steps before the first update"),
        "train_freq": Range(1, MAX_STEPS, note="env steps per round of updates"),
        "gradient_steps": Range(1, 10_000, note="updates per round"),
        "eval_every": Range(0, MAX_STEPS, note="0: no evaluations"),
        "eval_episodes": Range(1, 100_000),
        "checkpoint_every": Range(0, MAX_STEPS, note="0: a checkpoint at the end only"),
    }

    @classmethod
    def option_ranges(cls) -> dict[str, Range]:
        """Every ranged option of this config: its own and its bases' (a subclass's entry wins)."""
        out: dict[str, Range] = {}
        for c in reversed(cls.__mro__):
            out.update(c.__dict__.get("ranges", {}))
        return out

    def __post_init__(self):
        if isinstance(self.hidden, (list, tuple)) and len(self.hidden) > MAX_HIDDEN_LAYERS:
            raise ValueError(f"[agent] hidden has {len(self.hidden):_} layers: at most {MAX_HIDDEN_LAYERS} are "
                             "accepted (one width per hidden layer, e.g. hidden = [256, 256])")
        for name, rng in self.option_ranges().items():
            value = getattr(self, name)
            if isinstance(value, str) or value is None:  # e.g. alpha_init = "auto"; types are from_dict's
                continue
            for v in (value if isinstance(value, (list, tuple)) else (value,)):
                if isinstance(v, (int, float)) or v is None:
                    rng.check(f"[agent] {name}" + (" entry" if isinstance(value, (list, tuple)) else ""), v)
        if isinstance(self.buffer_size, int) and isinstance(self.batch_size, int) and self.buffer_size < self.batch_size:
            raise ValueError(f"[agent] buffer_size = {self.buffer_size} is out of range: it must be >= batch_size "
                             f"{self.batch_size} (a batch samples the buffer; a smaller buffer repeats transitions in "
                             "every batch)")

    @classmethod
    def from_dict(cls, d: dict[str, Any]):
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} option(s) {unknown}; known: {sorted(names)}")
        d = dict(d)
        for f in fields(cls):
            if f.name in d and not _type_ok(d[f.name], f.type):
                raise ValueError(f"{cls.__name__} option {f.name} = {d[f.name]!r} has the wrong type: expected {f.type}")
        if "hidden" in d:
            d["hidden"] = tuple(d["hidden"])
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _type_ok(value, annotation: str) -> bool:
    """Whether a config value fits its field's annotation ("float", "int | None", "tuple", ...)."""
    checks = {"float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
              "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
              "bool": lambda v: isinstance(v, bool), "str": lambda v: isinstance(v, str),
              "None": lambda v: v is None, "dict": lambda v: isinstance(v, dict),
              "tuple": lambda v: isinstance(v, (list, tuple)) and all(isinstance(x, int) and not isinstance(x, bool) for x in v)}
    kinds = [k.strip() for k in str(annotation).split("|")]
    return any(checks.get(k, lambda v: True)(value) for k in kinds)


def check_finite(name: str, value: torch.Tensor, step: int) -> float:
    v = float(value.detach()) if isinstance(value, torch.Tensor) else float(value)
    if not math.isfinite(v):
        raise TrainingDiverged(f"{name} became {v} at step {step}; the last good checkpoint is kept. "
                               "Lower the learning rate or check the environment's rewards/observations.")
    return v


class Agent:
    """The training loop shared by SAC, DQN and DrQ-v2 (subclasses implement act/update/networks).

    env: the training env (None for an agent loaded to predict: then `interface` says what the
    networks act on). env_spec: how to rebuild it (stored in checkpoints). eval_env: the
    evaluation env (default: env_spec's, else a copy of env)."""

    algo = ""
    config_cls: type = BaseConfig

    def __init__(self, env: gym.Env | None, config: BaseConfig, env_spec: EnvSpec | None = None,
                 eval_env: gym.Env | None = None, interface: EnvInterface | None = None):
        self.env, self.config, self.env_spec = env, config, env_spec
        if config.reward_scale <= 0 or not math.isfinite(config.reward_scale):
            raise ValueError(f"reward_scale must be a positive number, got {config.reward_scale}")
        if env is None and interface is None:
            raise ValueError("an agent needs an env (or, to predict only, the interface of one)")
        self.interface = interface if interface is not None else EnvInterface.of(env)
        self.observation_space, self.action_space = self.interface.observation_space, self.interface.action_space
        self.symmetry = self.interface.symmetry
        self.exact_reward = self.interface.exact_reward
        # evaluation never touches the training env (it would reset it mid-episode)
        if eval_env is None and env is not None:
            try:
                eval_env = env_spec.make(evaluation=True) if env_spec is not None else copy.deepcopy(env)
            except Exception as e:  # e.g. a simulator holding C handles: evaluate on the training env
                log.warning("no separate evaluation env (%s); evaluations will reset the training env", e)
        self.eval_env = eval_env
        self.best_eval: float | None = None  # best evaluation return so far (the evaluation callback keeps it)
        self.device = resolve_device(config.device)
        if config.family != "plain" and self.symmetry is None:
            assets = self.interface.assets
            # a book with one more action than assets holds cash beside them: long-only (AssetAxis)
            if assets is not None and int(np.prod(self.action_space.shape)) == assets.n_assets + 1:
                raise ValueError(f"the {config.family!r} reflection family needs the reflection, which a long-only "
                                 "book does not have (negating weights leaves the simplex): use --agent plain; the "
                                 "asset axis (--assets exact|relaxed) and the scale axis (--scale) keep all their families")
            raise ValueError(f"the {config.family!r} family needs an environment that declares a symmetry; "
                             f"{env_spec.id if env_spec else env} declares none (use --agent plain)")
        seed_everything(config.seed)  # network initialisation below draws from the global torch RNG
        self.rng = np.random.default_rng(config.seed)  # exploration and random actions
        self.torch_gen = torch.Generator().manual_seed(config.seed)  # policy sampling: per agent, not global
        self.step = 0
        self.episode = 0
        self.obs = None
        self.ep_return, self.ep_len = 0.0, 0
        self.last_losses: dict[str, float] = {}
        self.metrics: list[dict] = []
        self.provenance: dict[str, Any] = {}  # what the orchestration knows (dataset hash, ...): saved with checkpoints

    # -- hooks ----------------------------------------------------------------------------------
    def act(self, obs: np.ndarray, explore: bool) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def update(self) -> dict[str, float]:  # pragma: no cover - abstract
        raise NotImplementedError

    def policy_module(self):  # the module whose equivariance error is reported
        raise NotImplementedError

    def extra_metrics(self) -> dict[str, float]:
        return {}

    def _to_device(self, *names: str) -> None:
        """Move the named modules to the agent's device; parameters keep their identity, so
        optimisers built on them stay valid."""
        for n in names:
            getattr(self, n).to(self.device)

    def _obs_tensor(self, obs) -> torch.Tensor:
        """Observation(s) as a float32 tensor on the agent's device, batched: [B, *obs_shape]."""
        return torch.as_tensor(np.asarray(obs, dtype=np.float32), device=self.device).reshape(
            -1, *self.observation_space.shape)

    def _randn(self, shape) -> torch.Tensor:
        """Standard normal noise from the agent's own (CPU) generator, on the agent's device: the
        same draws, hence the same runs, on any device."""
        return torch.randn(shape, generator=self.torch_gen, device=self.torch_gen.device).to(self.device)

    def _require_exact_reward(self, option: str, env, env_spec, other: str) -> None:
        """A clear error where `option` (an exact-reward mode) is asked of an env without an
        ExactReward (a loaded agent that only predicts has no env and is let through)."""
        if self.exact_reward is None and env is not None:
            raise ValueError(f"{option} needs an env that offers an exact_reward (ExactReward protocol: the "
                             f"portfolio and trading envs); {env_spec.id if env_spec else env} has none: use {other}")

    #: the columns metrics.csv has from its first row (losses and extras as the algorithm names them)
    loss_columns: tuple[str, ...] = ()
    extra_columns: tuple[str, ...] = ()

    # -- user-facing ----------------------------------------------------------------------------
    def predict(self, obs, deterministic: bool = True):
        """Action(s) for an observation (or a batch), like Stable-Baselines3's predict."""
        return self.act(np.asarray(obs), explore=not deterministic)

    def policy(self):
        """The deterministic policy as a callable obs -> action (for `eqtrade.envs.rollout`)."""
        return lambda obs: self.act(obs, explore=False)

    def evaluate(self, episodes: int | None = None) -> float:
        """Mean return of the deterministic policy on the evaluation env (seeded resets)."""
        from ..envs.rollout import evaluate_policy, mean_return

        env = self.eval_env or self.env
        return mean_return(evaluate_policy(self.policy(), env, episodes or self.config.eval_episodes))

    def equivariance_error(self, n: int = 256) -> float | None:
        """Measured equivariance error of the policy on stored observations (None for plain)."""
        if self.symmetry is None or self.config.family == "plain" or len(self.buffer) == 0:
            return None
        from ..nn import equivariance_error

        self._fresh()
        idx = np.random.default_rng(0).integers(0, len(self.buffer), size=min(n, len(self.buffer)))
        obs = torch.from_numpy(self.buffer.obs[idx]).to(self.device)
        return equivariance_error(self.policy_module(), self.symmetry, obs)

    def scale_error(self, n: int = 256) -> float | None:
        """Measured deviation of the policy from return-scale invariance on stored observations:
        max over c in {1/2, 2} and over its outputs of ‖π(c·s) − π(s)‖ / ‖π(s)‖
        (`eqtrade.nn.scale.scale_errors`); None where the env has no scale axis, or an exact one
        (invariant by construction), or the policy is not a SAC actor."""
        axis = self.interface.scale
        if axis is None or axis.family == "exact" or len(self.buffer) == 0:
            return None
        module = self.policy_module()
        if getattr(module, "kind", "") != "actor":
            return None
        from ..nn.scale import scale_errors

        self._fresh()
        idx = np.random.default_rng(0).integers(0, len(self.buffer), size=min(n, len(self.buffer)))
        obs = torch.from_numpy(self.buffer.obs[idx]).to(self.device)
        return max(scale_errors(module, axis, obs).values())

    def learn(self, total_steps: int, out_dir: Path | None = None, progress: bool | str = True,
              on_eval=None, callbacks: Sequence = (), evaluation=None) -> "Agent":
        """Train until `total_steps` environment steps (continues from `self.step` after a load).

        The callbacks around the loop (eqtrade.agents.callbacks), in this order: `evaluation`
        (default: an EvalCallback every `config.eval_every` steps on the evaluation env, keeping
        best.pt in out_dir), then `callbacks`, then metrics.csv (out_dir), progress (True: a bar
        in a terminal, one line per evaluation otherwise; "lines"; False: silent), checkpoint.pt
        (out_dir: every `config.checkpoint_every` steps, on Ctrl-C and at the end) and `on_eval`
        (called with each evaluation's metrics row once its step is over, e.g. to report it to a
        sweep)."""
        from .callbacks import standard_callbacks

        cbs = standard_callbacks(self, out_dir, progress, on_eval, callbacks, evaluation)
        return self.learn_with(total_steps, cbs)

    def learn_with(self, total_steps: int, callbacks: Sequence) -> "Agent":
        """The training loop with exactly these callbacks (see `learn` for the usual ones)."""
        cfg = self.config
        if self.env is None:
            raise ValueError("this agent was loaded to predict (no env); load it with build_env=True to train")
        keep_freed_memory()
        if self.obs is None:
            self.obs, _ = self.env.reset(seed=cfg.seed)
        for cb in callbacks:
            cb.on_start(self, total_steps)
        records_extras = getattr(self.buffer, "extras", None) is not None
        status = "failed"
        try:
            with ctrl_c_stops() as stop:
                while self.step < total_steps:
                    if stop.requested:
                        raise KeyboardInterrupt
                    row = self._env_step(self.act(self.obs, explore=True), records_extras)
                    if self._update_due():
                        for _ in range(cfg.gradient_steps):
                            self.last_losses = self.update()
                    self._step_callbacks(callbacks, row)
            status = "done"
        except (KeyboardInterrupt, SystemExit):  # SystemExit: Ray Tune stopping a sweep's trial at its report
            status = "interrupted"
            raise
        finally:
            with checkpoints_first(status):
                for cb in callbacks:
                    cb.on_end(self, status)
        return self

    # -- the pieces of a training step (learn_with here; a stack of runs steps many agents with them)
    def _env_step(self, action, records_extras: bool) -> dict | None:
        """Step the training env with `action`, store the transition and keep the episode count;
        the episode's metrics row when it ends (else None)."""
        next_obs, r, term, trunc, _ = self.env.step(action)
        extras = self.exact_reward.last_extras() if records_extras else None
        self.buffer.add(self.obs, action, float(r) * self.config.reward_scale, next_obs, term, trunc, extras)
        self.ep_return += float(r)
        self.ep_len += 1
        self.step += 1
        row = None
        if term or trunc:
            self.episode += 1
            row = {"step": self.step, "episode": self.episode, "episode_return": self.ep_return,
                   "episode_length": self.ep_len}
            self.obs, _ = self.env.reset()
            self.ep_return, self.ep_len = 0.0, 0
        else:
            self.obs = next_obs
        return row

    def _update_due(self) -> bool:
        cfg = self.config
        return self.step > cfg.learning_starts and self.step % cfg.train_freq == 0

    def _step_callbacks(self, callbacks: Sequence, row: dict | None) -> None:
        """The callbacks of a finished step: their measurements join this step's row, which is
        recorded and passed on."""
        for cb in callbacks:
            measured = cb.on_step(self)
            if measured:
                row = row or {"step": self.step, "episode": self.episode}
                row.update(measured)
        if row is not None:
            row.update(self.last_losses)
            row.update(self.extra_metrics())
            self.metrics.append(row)
            for cb in callbacks:
                cb.on_row(self, row)
        for cb in callbacks:
            cb.after_step(self)

    def _fresh(self) -> None:
        """Bring the networks up to date before they are read (a stack of runs trains them in
        stacked tensors and copies them back on demand); nothing to do for a run of its own."""
        stack = getattr(self, "_stack", None)
        if stack is not None:
            stack.pull(self)

    # -- persistence ----------------------------------------------------------------------------
    def _state(self) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    def _load_state(self, s: dict) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _load_policy_state(self, s: dict) -> None:
        """Load what `predict` needs (default: everything)."""
        self._load_state(s)

    def save(self, path, include_buffer: bool = True) -> None:
        """Save everything needed to predict and to resume training exactly (atomically); never
        the env: its spec and the episode in progress as plain data. `include_buffer=False`
        writes a policy snapshot (best.pt) without the replay buffer."""
        self._fresh()
        state = {
            "algo": self.algo, "config": self.config.to_dict(),
            "env_spec": self.env_spec.to_dict() if self.env_spec else None,
            "interface": self.interface.to_state(),
            "nets": self._state(), "buffer": self.buffer.state_dict() if include_buffer else None,
            "best_eval": self.best_eval,
            "rng": self.rng.bit_generator.state, "torch_rng": self.torch_gen.get_state(),
            "step": self.step, "episode": self.episode, "ep_return": self.ep_return, "ep_len": self.ep_len,
            "obs": self.obs, "episode_state": episode_state(self.env) if self.env is not None else None,
            "last_losses": self.last_losses, "metrics": self.metrics,
        }
        ckpt.write(path, state, ckpt.provenance(self.device, self.provenance))

    @classmethod
    def load(cls, path, env: gym.Env | None = None, eval_env: gym.Env | None = None,
             device: str = "auto", build_env: bool = False) -> "Agent":
        """Rebuild an agent from `save` on `device` (auto, cpu, cuda: wherever it was saved).
        By default it predicts and builds no env; `build_env=True` (or an `env`) rebuilds the
        training and evaluation envs from the saved spec and restores the episode in progress,
        so that `learn` continues exactly. `path`: a checkpoint file, or a run directory (its
        checkpoint.pt, the last state; pass RUN/best.pt for the best validation checkpoint)."""
        path = ckpt.checkpoint_file(path)
        state = ckpt.read(path)
        cls = cls._algo_class(state, path)
        spec = EnvSpec(**state["env_spec"]) if state["env_spec"] else None
        config = _config_on(cls, state["config"], device)
        if env is None and build_env:
            if spec is None:
                raise ValueError(f"{path} records no environment; pass env=")
            env = spec.make()
        if env is None:
            agent = cls(None, config, spec, eval_env, interface=EnvInterface.from_state(state["interface"]))
        else:
            if eval_env is None and spec is not None:
                eval_env = spec.make(evaluation=True)
            agent = cls(env, config, spec, eval_env)
        agent._restore(state)
        return agent

    @classmethod
    def _algo_class(cls, state: dict, path) -> type:
        """The agent class a saved state belongs to (Agent.load picks it; SAC.load checks it)."""
        if cls is Agent:
            from . import ALGOS

            if state["algo"] not in ALGOS:
                raise ckpt.CheckpointError(f"{path}: unknown algorithm {state['algo']!r} in the checkpoint")
            return ALGOS[state["algo"]]
        if state["algo"] != cls.algo:
            raise ValueError(f"{path} holds a {state['algo']} agent, not {cls.algo}")
        return cls

    @classmethod
    def load_policy(cls, path, env: gym.Env, device: str = "auto") -> "Agent":
        """The networks of a saved agent, acting on `env` (e.g. another universe of assets for a
        per-asset portfolio network); no replay buffer, no training state. `path` as in `load`."""
        path = ckpt.checkpoint_file(path)
        state = ckpt.read(path)
        cls = cls._algo_class(state, path)
        spec = EnvSpec(**state["env_spec"]) if state["env_spec"] else None
        agent = cls(env, _config_on(cls, state["config"], device), spec, env)
        agent._load_policy_state(state["nets"])
        agent.step = state["step"]
        return agent

    def _restore(self, state: dict) -> None:
        self._load_state(state["nets"])
        if state["buffer"] is not None:
            self.buffer.load_state_dict(state["buffer"])
        self.best_eval = state["best_eval"]
        self.rng.bit_generator.state = state["rng"]
        self.torch_gen.set_state(state["torch_rng"])
        self.step, self.episode = state["step"], state["episode"]
        self.ep_return, self.ep_len = state["ep_return"], state["ep_len"]
        self.last_losses, self.metrics = state["last_losses"], state["metrics"]
        self.provenance = dict(state["provenance"].get("run", {}))
        if self.env is not None and restore_episode(self.env, state["episode_state"]):
            self.obs = state["obs"]
        else:  # an env that cannot resume mid-episode starts a new one (the step count goes on)
            self.obs = None
            self.ep_return, self.ep_len = 0.0, 0


def _config_on(cls, saved: dict, device: str):
    """A saved config (from a checkpoint) with the device this process runs on: a run saved on
    a GPU loads on a CPU and the other way round."""
    return cls.config_cls.from_dict(dict(saved, device=device))


def clone_frozen(module: torch.nn.Module) -> torch.nn.Module:
    """A deep copy with gradients off (a target network)."""
    target = copy.deepcopy(module)
    for p in target.parameters():
        p.requires_grad_(False)
    return target


def soft_update(target: torch.nn.Module, source: torch.nn.Module, tau: float) -> None:
    with torch.no_grad():
        tp, sp = list(target.parameters()), list(source.parameters())
        if tau >= 1.0:
            torch._foreach_copy_(tp, sp)
        else:
            torch._foreach_lerp_(tp, sp, tau)


def adam(params, lr: float) -> torch.optim.Adam:
    """Adam with torch's fused kernel (one kernel over all its tensors) where the parameters allow
    it (floating point, on the CPU or CUDA), else the foreach one. On these networks' small tensors
    a fused step is about 3x faster than foreach (`bench_stack.py adam`) and, being elementwise,
    steps a run's numbers identically whether they sit alone or in a stack of runs."""
    params = list(params)
    fused = bool(params) and all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)
    return torch.optim.Adam(params, lr=lr, fused=True) if fused else torch.optim.Adam(params, lr=lr, foreach=True)
