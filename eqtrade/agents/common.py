"""What SAC and DQN share: environments by name, their symmetries, the training loop with
progress, evaluation, metrics, checkpoints (resume), and NaN handling."""

from __future__ import annotations

import copy
import csv
import io
import logging
import math
import pickle
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from ..symmetry import Symmetry, cartpole_discrete_reflection, pendulum_reflection

log = logging.getLogger(__name__)

#: symmetries of gymnasium's own tasks that the learning checks use
KNOWN_SYMMETRIES = {"Pendulum-v1": pendulum_reflection, "CartPole-v1": cartpole_discrete_reflection}


#: the trading envs: they have splits, turnover and normalised observations
TRADING_ENVS = ("portfolio", "trading")

#: checkpoint layout: 2 since the trading envs normalise observations by default (format 1 runs
#: saw raw returns and are loaded that way)
CHECKPOINT_FORMAT = 2


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class EnvSpec:
    """Which environment to train on: `portfolio`, `trading`, or any gymnasium id, plus kwargs."""

    id: str = "portfolio"
    kwargs: dict = field(default_factory=dict)
    eval_kwargs: dict = field(default_factory=dict)  # overrides for the evaluation env

    def make(self, evaluation: bool = False) -> gym.Env:
        kw = dict(self.kwargs, **(self.eval_kwargs if evaluation else {}))
        if self.id == "portfolio":
            from ..envs import PortfolioEnv

            return PortfolioEnv(**kw)
        if self.id == "trading":
            from ..envs import TradingEnv

            return TradingEnv(**kw)
        try:
            return gym.make(self.id, **kw)
        except gym.error.Error as e:
            raise ValueError(f"unknown environment {self.id!r}: use portfolio, trading or a gymnasium id ({e})") from e


def env_symmetry(env: gym.Env, env_id: str) -> Symmetry | None:
    """The symmetry an environment declares (`env.unwrapped.symmetry`), or a known one for
    gymnasium's own tasks."""
    sym = getattr(env.unwrapped, "symmetry", None)
    if sym is None and env_id in KNOWN_SYMMETRIES:
        sym = KNOWN_SYMMETRIES[env_id]()
    return sym


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


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


@dataclass
class BaseConfig:
    """Options common to SAC and DQN (see the algorithm configs for the rest)."""

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
    """Training loop shared by SAC and DQN (subclasses implement act/update/networks)."""

    algo = ""

    def __init__(self, env: gym.Env, config: BaseConfig, env_spec: EnvSpec | None = None,
                 eval_env: gym.Env | None = None):
        self.env, self.config, self.env_spec = env, config, env_spec
        if config.reward_scale <= 0 or not math.isfinite(config.reward_scale):
            raise ValueError(f"reward_scale must be a positive number, got {config.reward_scale}")
        # evaluation never touches the training env (it would reset it mid-episode)
        if eval_env is None:
            try:
                eval_env = env_spec.make(evaluation=True) if env_spec is not None else copy.deepcopy(env)
            except Exception as e:  # e.g. a simulator holding C handles: evaluate on the training env
                log.warning("no separate evaluation env (%s); evaluations will reset the training env", e)
        self.eval_env = eval_env
        self.train_eval_env = None  # built on first use: the training split over its full period
        self.best_eval: float | None = None
        self.device = resolve_device(config.device)
        self.symmetry = env_symmetry(env, env_spec.id if env_spec else "")
        if config.family != "plain" and self.symmetry is None:
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
            -1, *self.env.observation_space.shape)

    def _randn(self, shape) -> torch.Tensor:
        """Standard normal noise from the agent's own (CPU) generator, on the agent's device: the
        same draws, hence the same runs, on any device."""
        return torch.randn(shape, generator=self.torch_gen, device=self.torch_gen.device).to(self.device)

    #: the columns metrics.csv has from its first row (losses and extras as the algorithm names them)
    loss_columns: tuple[str, ...] = ()
    extra_columns: tuple[str, ...] = ()

    def metric_columns(self) -> list[str]:
        """Every column of metrics.csv, evaluation columns included before the first evaluation."""
        evals = ["eval_return"]
        if self._train_eval_env_possible():
            evals += ["eval_sharpe", "eval_turnover", "train_return", "train_sharpe", "train_turnover"]
        return (["step", "episode", "episode_return", "episode_length"] + evals
                + ["equivariance_error", "best_eval_return"] + list(self.loss_columns) + list(self.extra_columns))

    def _train_eval_env_possible(self) -> bool:
        return self.env_spec is not None and self.env_spec.id in TRADING_ENVS

    # -- user-facing ----------------------------------------------------------------------------
    def predict(self, obs, deterministic: bool = True):
        """Action(s) for an observation (or a batch), like Stable-Baselines3's predict."""
        return self.act(np.asarray(obs), explore=not deterministic)

    def evaluate(self, episodes: int | None = None) -> float:
        """Mean return of the deterministic policy on the evaluation env (seeded resets)."""
        return self.evaluate_detail(self.eval_env or self.env, episodes)["return"]

    def evaluate_detail(self, env: gym.Env, episodes: int | None = None) -> dict[str, float]:
        """Deterministic rollouts on `env`: mean return, and for trading envs (whose steps report
        a turnover) the annualised Sharpe of the daily log growth and the mean daily turnover."""
        n = episodes or self.config.eval_episodes
        rewards, turnover = [], []
        for k in range(n):
            obs, _ = env.reset(seed=10_000 + k)
            done = False
            while not done:
                obs, r, term, trunc, info = env.step(self.act(obs, explore=False))
                rewards.append(float(r))
                if "turnover" in info:
                    turnover.append(float(info["turnover"]))
                done = term or trunc
        out = {"return": sum(rewards) / n}
        if turnover:
            r = np.expm1(np.asarray(rewards))  # simple returns from log growth, as the backtests' Sharpe
            sd = r.std(ddof=1) if len(r) > 1 else 0.0
            out["sharpe"] = float(r.mean() / sd * math.sqrt(252)) if sd > 0 else 0.0
            out["turnover"] = float(np.mean(turnover))
        return out

    def _train_eval_env(self) -> gym.Env | None:
        """The training split walked over its full period (trading envs only): the train side of
        the generalisation gap, reported next to the validation numbers."""
        spec = self.env_spec
        if not self._train_eval_env_possible():
            return None
        if self.train_eval_env is None:
            kw = dict(spec.kwargs, **spec.eval_kwargs)
            kw.update(split=spec.kwargs.get("split", "train"), full_period=True)
            self.train_eval_env = EnvSpec(spec.id, kw).make()
        return self.train_eval_env

    def _evaluation_row(self, out_dir: Path | None) -> dict[str, Any]:
        """One evaluation: validation (the model-selection split) and, for trading envs, the
        training split side by side; keeps best.pt when the validation return improves."""
        ev = self.evaluate_detail(self.eval_env or self.env)
        row: dict[str, Any] = {"eval_return": ev["return"]}
        if "sharpe" in ev:
            row.update(eval_sharpe=ev["sharpe"], eval_turnover=ev["turnover"])
        tr_env = self._train_eval_env()
        if tr_env is not None:
            tr = self.evaluate_detail(tr_env, 1)
            row.update(train_return=tr["return"], train_sharpe=tr.get("sharpe"), train_turnover=tr.get("turnover"))
        row["equivariance_error"] = self.equivariance_error()
        if self.best_eval is None or ev["return"] > self.best_eval:
            self.best_eval = ev["return"]
            if out_dir:
                self.save(out_dir / "best.pt", include_buffer=False)
        row["best_eval_return"] = self.best_eval
        return row

    def equivariance_error(self, n: int = 256) -> float | None:
        """Measured equivariance error of the policy on stored observations (None for plain)."""
        if self.symmetry is None or self.config.family == "plain" or len(self.buffer) == 0:
            return None
        from ..nn import equivariance_error

        idx = np.random.default_rng(0).integers(0, len(self.buffer), size=min(n, len(self.buffer)))
        obs = torch.from_numpy(self.buffer.obs[idx]).to(self.device)
        return equivariance_error(self.policy_module(), self.symmetry, obs)

    def learn(self, total_steps: int, out_dir: Path | None = None, progress: bool | str = True,
              on_eval=None) -> "Agent":
        """Train until `total_steps` environment steps (continues from `self.step` after a load).
        progress: True (a bar in a terminal, one line per evaluation on stderr otherwise), "lines"
        (always lines) or False (silent). on_eval: called with each evaluation's metrics row
        (after it is written to metrics.csv), e.g. to report it to a sweep."""
        from tqdm.auto import tqdm

        cfg = self.config
        writer = MetricsWriter(out_dir / "metrics.csv", self.metric_columns()) if out_dir else None
        if self.obs is None:
            self.obs, _ = self.env.reset(seed=cfg.seed)
        # a terminal gets a progress bar; a log file (stderr not a terminal) one line per evaluation
        lines = progress == "lines" or (bool(progress) and not (sys.stderr.isatty() and sys.stdout.isatty()))
        bar = tqdm(total=total_steps, initial=self.step, desc=f"{self.algo} {cfg.family}", unit="step",
                   disable=not progress or lines, dynamic_ncols=True)
        t_start, step_start = time.perf_counter(), self.step
        last_ret = float("nan")
        # Ctrl-C finishes the current step and stops at the loop's top, where the state is whole,
        # so that the checkpoint resumes exactly; a second Ctrl-C stops at once.
        self._stop = False
        prev_handler = None
        if threading.current_thread() is threading.main_thread():
            def on_sigint(signum, frame):
                if self._stop:
                    raise KeyboardInterrupt
                self._stop = True

            prev_handler = signal.signal(signal.SIGINT, on_sigint)
        try:
            while self.step < total_steps:
                if self._stop:
                    raise KeyboardInterrupt
                action = self.act(self.obs, explore=True)
                next_obs, r, term, trunc, info = self.env.step(action)
                self.buffer.add(self.obs, action, float(r) * cfg.reward_scale, next_obs, term, trunc,
                                info.get("exact_extras", info.get("next_returns")))
                self.ep_return += float(r)
                self.ep_len += 1
                self.step += 1
                row = None
                if term or trunc:
                    self.episode += 1
                    last_ret = self.ep_return
                    row = {"step": self.step, "episode": self.episode, "episode_return": self.ep_return,
                           "episode_length": self.ep_len}
                    self.obs, _ = self.env.reset()
                    self.ep_return, self.ep_len = 0.0, 0
                else:
                    self.obs = next_obs
                if self.step > cfg.learning_starts and self.step % cfg.train_freq == 0:
                    for _ in range(cfg.gradient_steps):
                        self.last_losses = self.update()
                if cfg.eval_every and self.step % cfg.eval_every == 0:
                    row = row or {"step": self.step, "episode": self.episode}
                    row.update(self._evaluation_row(out_dir))
                if row is not None:
                    row.update(self.last_losses)
                    row.update(self.extra_metrics())
                    self.metrics.append(row)
                    if writer:
                        writer.write(row)
                    if on_eval is not None and "eval_return" in row:
                        on_eval(row)
                    if lines and "eval_return" in row:
                        _progress_line(row, total_steps, (self.step - step_start) / max(time.perf_counter() - t_start, 1e-9),
                                       (*self.loss_columns, *self.extra_columns))
                if out_dir and cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0:
                    self.save(out_dir / "checkpoint.pt")
                bar.update(1)
                if self.step % 50 == 0:
                    bar.set_postfix({"ret": f"{last_ret:.3g}", **{k: f"{v:.3g}" for k, v in self.last_losses.items()}},
                                    refresh=False)
        except KeyboardInterrupt:
            if out_dir:
                self.save(out_dir / "checkpoint.pt")
                log.warning("interrupted at step %d; checkpoint saved to %s (continue with --resume)",
                            self.step, out_dir / "checkpoint.pt")
            raise
        finally:
            bar.close()
            if prev_handler is not None:
                signal.signal(signal.SIGINT, prev_handler)
        if out_dir:
            self.save(out_dir / "checkpoint.pt")
        if lines:
            secs = time.perf_counter() - t_start
            sys.stderr.write(f"{self.algo} {cfg.family}: done, {self.step} steps ({self.step - step_start} in "
                             f"{secs:.0f} s, {(self.step - step_start) / max(secs, 1e-9):.0f} steps/s); "
                             f"best evaluation return {self.best_eval if self.best_eval is not None else float('nan'):.4g}\n")
        return self

    # -- persistence ----------------------------------------------------------------------------
    def _state(self) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    def _load_state(self, s: dict) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _load_policy_state(self, s: dict) -> None:
        """Load what `predict` needs (default: everything)."""
        self._load_state(s)

    def save(self, path, include_buffer: bool = True) -> None:
        """Save everything needed to predict and to resume training exactly (atomically);
        `include_buffer=False` writes a policy snapshot (best.pt) without the replay buffer."""
        from ..util import atomic_write_bytes

        state = {
            "algo": self.algo, "config": self.config.to_dict(),
            "env_spec": asdict(self.env_spec) if self.env_spec else None,
            "nets": self._state(), "buffer": self.buffer.state_dict() if include_buffer else None,
            "best_eval": self.best_eval, "format": CHECKPOINT_FORMAT,
            "rng": self.rng.bit_generator.state, "torch_rng": self.torch_gen.get_state(),
            "step": self.step, "episode": self.episode, "ep_return": self.ep_return, "ep_len": self.ep_len,
            "obs": self.obs, "last_losses": self.last_losses, "metrics": self.metrics,
            "env": _try_pickle(self.env),
        }
        buf = io.BytesIO()
        torch.save(state, buf)
        atomic_write_bytes(Path(path), buf.getvalue())

    @classmethod
    def load(cls, path, env: gym.Env | None = None, eval_env: gym.Env | None = None,
             device: str = "auto") -> "Agent":
        """Rebuild an agent from `save`: for predictions, or to continue `learn` exactly, on
        `device` (auto, cpu, cuda: wherever it was saved)."""
        state = torch.load(Path(path), weights_only=False, map_location="cpu")
        cls = cls._algo_class(state, path)
        spec = EnvSpec(**state["env_spec"]) if state["env_spec"] else None
        if (spec is not None and spec.id in TRADING_ENVS and "normalize" not in spec.kwargs
                and state.get("format", 1) < 2):
            spec.kwargs["normalize"] = False  # saved before observations were normalised: raw returns
        if env is None:
            if spec is None:
                raise ValueError(f"{path} records no environment; pass env=")
            env = spec.make()
        if eval_env is None and spec is not None:
            eval_env = spec.make(evaluation=True)
        agent = cls(env, _config_on(cls, state["config"], device), spec, eval_env)
        agent._restore(state)
        return agent

    @classmethod
    def _algo_class(cls, state: dict, path) -> type:
        """The agent class a saved state belongs to (Agent.load picks it; SAC.load checks it)."""
        if cls is Agent:
            from . import ALGOS

            return ALGOS[state["algo"]]
        if state["algo"] != cls.algo:
            raise ValueError(f"{path} holds a {state['algo']} agent, not {cls.algo}")
        return cls

    @classmethod
    def load_policy(cls, path, env: gym.Env, device: str = "auto") -> "Agent":
        """The networks of a saved agent, acting on `env` (e.g. another universe of assets for a
        per-asset portfolio network); no replay buffer, no training state."""
        state = torch.load(Path(path), weights_only=False, map_location="cpu")
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
        self.best_eval = state.get("best_eval")
        self.rng.bit_generator.state = state["rng"]
        self.torch_gen.set_state(state["torch_rng"])
        self.step, self.episode = state["step"], state["episode"]
        self.ep_return, self.ep_len = state["ep_return"], state["ep_len"]
        self.last_losses, self.metrics = state["last_losses"], state["metrics"]
        if state.get("env") is not None:
            self.env = pickle.loads(state["env"])
            self.obs = state["obs"]
        else:  # an env that cannot be pickled restarts its episode
            self.obs = None


def _config_on(cls, saved: dict, device: str):
    """A saved config (from a checkpoint) with the device this process runs on: a run saved on
    a GPU loads on a CPU and the other way round."""
    return cls.config_cls.from_dict(dict(saved, device=device))


def _try_pickle(env) -> bytes | None:
    try:
        return pickle.dumps(env)
    except Exception:  # e.g. simulators holding C handles
        return None


def _progress_line(row: dict, total: int, speed: float, losses: tuple[str, ...]) -> None:
    """One line per evaluation for a log file: step, returns, losses, speed, time left."""
    def f(k, fmt="{:.3g}"):
        v = row.get(k)
        return None if v is None or (isinstance(v, float) and math.isnan(v)) else fmt.format(v)

    parts = [f"step {row['step']}/{total} ({100 * row['step'] / total:.0f}%)", f"eval return {f('eval_return')}"]
    if f("eval_sharpe"):
        parts.append(f"valid Sharpe {f('eval_sharpe', '{:.2f}')} turnover {f('eval_turnover', '{:.3f}')}"
                     f" | train Sharpe {f('train_sharpe', '{:.2f}')}")
    parts += [f"{k} {f(k)}" for k in losses if f(k)]
    left = (total - row["step"]) / max(speed, 1e-9)
    parts.append(f"{speed:.0f} steps/s, {left / 60:.1f} min left")
    sys.stderr.write(" | ".join(parts) + "\n")
    sys.stderr.flush()


class MetricsWriter:
    """Appends rows to metrics.csv with the agent's columns from the first row (a column that
    appears later is added by rewriting the header)."""

    def __init__(self, path: Path, columns: list[str] | None = None):
        self.path = path
        self.cols: list[str] = list(columns or [])
        if path.exists():
            with open(path) as fh:
                header = fh.readline().strip()
                self.cols = header.split(",") if header else self.cols

    def rewrite(self, rows: list[dict]) -> None:
        """The whole file from `rows` (e.g. the metrics a checkpoint holds), atomically."""
        from ..util import atomic_write_bytes

        self.cols += [k for r in rows for k in r if k not in self.cols]
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=self.cols)
        w.writeheader()
        w.writerows({k: ("" if v is None else v) for k, v in r.items()} for r in rows)
        atomic_write_bytes(self.path, buf.getvalue().encode())

    def write(self, row: dict) -> None:
        new = [k for k in row if k not in self.cols]
        if new or not self.path.exists():
            rows = []
            if self.path.exists():
                with open(self.path) as fh:
                    rows = list(csv.DictReader(fh))
            self.cols += new
            with open(self.path, "w", newline="") as fh:
                w = csv.DictWriter(fh, fieldnames=self.cols)
                w.writeheader()
                w.writerows(rows)
        with open(self.path, "a", newline="") as fh:
            csv.DictWriter(fh, fieldnames=self.cols).writerow({k: ("" if v is None else v) for k, v in row.items()})


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
