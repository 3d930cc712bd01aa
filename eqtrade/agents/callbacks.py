"""Callbacks around `Agent.learn`, in the Stable-Baselines3 manner.

A callback may implement any of:
    columns                      the metrics.csv columns it adds (known before its first value)
    on_start(agent, total)       before the first step of this `learn`
    on_step(agent) -> dict|None  after each step's update: numbers to log in this step's row
    on_row(agent, row)           a completed metrics row (episode end or evaluation)
    after_step(agent)            the step is finished (checkpoints go here)
    on_end(agent, status)        "done", "interrupted" (Ctrl-C, SIGTERM, or Ray Tune stopping a
                                 sweep's trial) or "failed" (an exception)

`standard_callbacks` assembles what `learn` uses: evaluation, metrics.csv, progress, checkpoints
and a sweep's reporter. The trading evaluation (Sharpe, turnover, the train split beside the
valid split) is `eqtrade.backtest.evaluation.TradingEvalCallback`, an `EvalCallback`.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

log = logging.getLogger(__name__)

ROW_COLUMNS = ("step", "episode", "episode_return", "episode_length")


class Callback:
    """Does nothing; subclasses override the hooks they need."""

    columns: tuple[str, ...] = ()

    def on_start(self, agent, total_steps: int) -> None:
        pass

    def on_step(self, agent) -> dict | None:
        return None

    def on_row(self, agent, row: dict) -> None:
        pass

    def after_step(self, agent) -> None:
        pass

    def on_end(self, agent, status: str) -> None:
        pass


def metric_columns(agent, callbacks: Sequence[Callback]) -> list[str]:
    """Every column of metrics.csv, the evaluation's included before the first evaluation."""
    cols = list(ROW_COLUMNS)
    for cb in callbacks:
        cols += [c for c in cb.columns if c not in cols]
    return cols + [c for c in (*agent.loss_columns, *agent.extra_columns) if c not in cols]


class EvalCallback(Callback):
    """Every `every` steps: the deterministic policy's mean return over `episodes` seeded episodes
    of `env` (default: the agent's evaluation env), its measured equivariance error and deviation
    from return-scale invariance (`Agent.scale_error`), and the best
    return so far; the policy is saved to `best_path` (best.pt) when the return improves."""

    eval_columns: tuple[str, ...] = ("eval_return",)

    def __init__(self, env=None, every: int | None = None, episodes: int | None = None,
                 best_path: Path | None = None):
        self.env, self.every, self.episodes, self.best_path = env, every, episodes, best_path

    @property
    def columns(self) -> tuple[str, ...]:
        return (*self.eval_columns, "equivariance_error", "scale_error", "best_eval_return")

    def on_start(self, agent, total_steps: int) -> None:
        self.env = self.env or agent.eval_env or agent.env
        self.every = agent.config.eval_every if self.every is None else self.every
        self.episodes = self.episodes or agent.config.eval_episodes

    def due(self, agent) -> bool:
        """Whether this step evaluates."""
        return bool(self.every) and agent.step % self.every == 0

    def plan(self, agent) -> list[tuple[str, Any, int]]:
        """The rollouts of this step's evaluation, as (name, env, reset seed): `summarize` gets
        the episodes by name. A stack of runs runs the same rollouts of every run together."""
        return [("eval", self.env, 10_000 + k) for k in range(self.episodes)]

    def summarize(self, agent, episodes: dict[str, list]) -> dict[str, Any]:
        """The evaluation's numbers from its episodes (subclasses add theirs); "eval_return"
        selects best.pt."""
        from ..envs.rollout import mean_return

        return {"eval_return": mean_return(episodes["eval"])}

    def evaluate(self, agent) -> dict[str, Any]:
        """This step's evaluation of `agent`'s deterministic policy, rolled out here."""
        from ..envs.rollout import rollout

        episodes: dict[str, list] = {}
        for name, env, seed in self.plan(agent):
            episodes.setdefault(name, []).append(rollout(agent.policy(), env, seed=seed))
        return self.summarize(agent, episodes)

    def prefill(self, agent, episodes: dict[str, list]) -> None:
        """This step's episodes, rolled out elsewhere (a stack's batched rollout)."""
        self._prefilled = (agent.step, episodes)

    def on_step(self, agent) -> dict | None:
        if not self.due(agent):
            return None
        pre = getattr(self, "_prefilled", None)
        self._prefilled = None
        row = self.summarize(agent, pre[1]) if pre is not None and pre[0] == agent.step else self.evaluate(agent)
        row["equivariance_error"] = agent.equivariance_error()
        row["scale_error"] = agent.scale_error()
        if agent.best_eval is None or row["eval_return"] > agent.best_eval:
            agent.best_eval = row["eval_return"]
            if self.best_path is not None:
                agent.save(self.best_path, include_buffer=False)
        row["best_eval_return"] = agent.best_eval
        return row


class CheckpointCallback(Callback):
    """checkpoint.pt every `every` steps, on Ctrl-C (then a warning says how to resume) and at the end."""

    def __init__(self, path: Path, every: int | None = None):
        self.path, self.every = Path(path), every

    def on_start(self, agent, total_steps: int) -> None:
        self.every = agent.config.checkpoint_every if self.every is None else self.every

    def after_step(self, agent) -> None:
        if self.every and agent.step % self.every == 0:
            agent.save(self.path)

    def on_end(self, agent, status: str) -> None:
        if status == "failed":
            return  # the last good checkpoint is kept
        agent.save(self.path)
        if status == "interrupted":
            log.warning("interrupted at step %d; checkpoint saved to %s (continue with --resume)", agent.step, self.path)


class MetricsCSV(Callback):
    """Appends each metrics row to a CSV file with the agent's columns from the first row (a
    column that appears later is added by rewriting the header)."""

    def __init__(self, path: Path, columns: list[str] | None = None):
        self.path = Path(path)
        self.cols: list[str] = list(columns or [])
        if self.path.exists():
            with open(self.path) as fh:
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

    def on_row(self, agent, row: dict) -> None:
        self.write(row)


class OnEval(Callback):
    """Calls `fn(row)` with each evaluation's metrics row, e.g. a sweep's Tune report, once the
    step is over: after its row is written and its checkpoint (if one is due) saved
    (`standard_callbacks` puts it last). A report can be where the run ends: Ray Tune stops an
    interrupted sweep's trial inside its report (a SystemExit, which the training loop treats as
    an interrupt: every run's checkpoint is saved at that step), and a pack reports once all its
    runs have finished the step."""

    def __init__(self, fn: Callable[[dict], None]):
        self.fn = fn
        self.pending: dict | None = None

    def on_row(self, agent, row: dict) -> None:
        if "eval_return" in row:
            self.pending = row

    def after_step(self, agent) -> None:
        if self.pending is not None:
            row, self.pending = self.pending, None
            self.fn(row)


class Progress(Callback):
    """A bar in a terminal; one line per evaluation in a log file (stderr not a terminal, or
    mode "lines"), and a closing line with the speed."""

    def __init__(self, mode: bool | str = True, label: str | None = None):
        self.mode, self.label = mode, label  # label: what the bar names (default: the algorithm and family)
        self.runs = 1  # a stack's runs (its bar shows run 0's steps; speeds count every run's)

    def on_start(self, agent, total_steps: int) -> None:
        from ..util import progress_bar, progress_mode

        self.total = total_steps
        self.lines = progress_mode(self.mode) == "lines"
        self.bar = progress_bar(total=total_steps, initial=agent.step, desc=f"{agent.algo} {agent.config.family}" + (f" {self.label}" if self.label else ""),
                                unit="step", progress=self.mode, lines=False)  # lines: one per evaluation
        self.t_start, self.step_start = time.perf_counter(), agent.step
        self.last_ret = float("nan")
        # the time left is estimated from the steps since updates began (the random-action steps
        # before them run many times faster): the time and step they began, once seen
        self.learning = (self.t_start, agent.step) if agent.step > agent.config.learning_starts else None

    def _speed(self, agent) -> float:
        return (agent.step - self.step_start) / max(time.perf_counter() - self.t_start, 1e-9)

    def _learning_speed(self, agent) -> float | None:
        """Steps/s (each run's) since updates began; None before they have run for a while."""
        if self.learning is None or agent.step - self.learning[1] < 1:
            return None
        return (agent.step - self.learning[1]) / max(time.perf_counter() - self.learning[0], 1e-9)

    def on_row(self, agent, row: dict) -> None:
        if "episode_return" in row:
            self.last_ret = row["episode_return"]
        if self.lines and "eval_return" in row:
            progress_line(row, self.total, self._speed(agent), (*agent.loss_columns, *agent.extra_columns), self.runs,
                          self._learning_speed(agent), agent.config.learning_starts)

    def after_step(self, agent) -> None:
        if self.learning is None and agent.step > agent.config.learning_starts:
            self.learning = (time.perf_counter(), agent.step)
        self.bar.update(1)
        if agent.step % 50 == 0:
            self.bar.set_postfix({"ret": f"{self.last_ret:.3g}",
                                  **{k: f"{v:.3g}" for k, v in agent.last_losses.items()}}, refresh=False)

    def on_end(self, agent, status: str) -> None:
        self.bar.close()
        if self.lines and status == "done":
            secs = time.perf_counter() - self.t_start
            n = agent.step - self.step_start
            best = agent.best_eval if agent.best_eval is not None else float("nan")
            if self.runs > 1:  # a stack: every run did n steps in this time
                sys.stderr.write(f"{agent.algo} {agent.config.family} {self.label}: done, {agent.step} steps each "
                                 f"({self.runs} x {n} in {secs:.0f} s, {self.runs * n / max(secs, 1e-9):.0f} steps/s "
                                 f"over the {self.runs} runs)\n")
                return
            sys.stderr.write(f"{agent.algo} {agent.config.family}{' ' + self.label if self.label else ''}: done, "
                             f"{agent.step} steps ({n} in {secs:.0f} s, {n / max(secs, 1e-9):.0f} steps/s); best "
                             f"evaluation return {best:.4g}\n")


def progress_line(row: dict, total: int, speed: float, losses: tuple[str, ...], runs: int = 1,
                  learning_speed: float | None = None, learning_starts: int = 0) -> None:
    """One line per evaluation for a log file: step, returns, losses, speed (of `runs` runs
    stepping together at `speed` each), time left (at `learning_speed`, the speed since updates
    began; before they have, not estimated)."""
    def f(k, fmt="{:.3g}"):
        v = row.get(k)
        return None if v is None or (isinstance(v, float) and math.isnan(v)) else fmt.format(v)

    parts = [f"step {row['step']}/{total} ({100 * row['step'] / total:.0f}%)", f"eval return {f('eval_return')}"]
    if f("eval_sharpe"):
        parts.append(f"valid Sharpe {f('eval_sharpe', '{:.2f}')} turnover {f('eval_turnover', '{:.3f}')}"
                     + (f" | train Sharpe {f('train_sharpe', '{:.2f}')}" if f("train_sharpe") else ""))
    parts += [f"{k} {f(k)}" for k in losses if f(k)]
    rate = f"{speed * runs:.0f} steps/s" + (f" over {runs} runs" if runs > 1 else "")
    if row["step"] >= total:
        parts.append(rate)
    elif learning_speed is not None:
        parts.append(f"{rate}, {(total - row['step']) / max(learning_speed, 1e-9) / 60:.1f} min left")
    else:
        parts.append(f"{rate} (random actions until step {learning_starts}: time left estimated once updates run)")
    sys.stderr.write(" | ".join(parts) + "\n")
    sys.stderr.flush()


def standard_callbacks(agent, out_dir: Path | None = None, progress: bool | str = True, on_eval=None,
                       extra: Sequence[Callback] = (), evaluation: EvalCallback | None = None) -> list[Callback]:
    """The callbacks of `Agent.learn`: evaluation (best.pt in out_dir), `extra`, metrics.csv,
    progress, checkpoint.pt (out_dir), `on_eval`."""
    out_dir = Path(out_dir) if out_dir else None
    ev = evaluation if evaluation is not None else EvalCallback()
    if out_dir is not None and ev.best_path is None:
        ev.best_path = out_dir / "best.pt"
    cbs: list[Callback] = [ev, *extra]
    if out_dir is not None:
        cbs.append(MetricsCSV(out_dir / "metrics.csv", metric_columns(agent, cbs)))
    cbs.append(Progress(progress))
    if out_dir is not None:
        cbs.append(CheckpointCallback(out_dir / "checkpoint.pt"))
    if on_eval is not None:  # last: it reports once the step's checkpoint is saved
        cbs.append(OnEval(on_eval))
    return cbs
