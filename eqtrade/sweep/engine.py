"""Running a sweep's trials on Ray Tune: a local Ray instance by default, a cluster by address.

Layout of OUT/ (a sweep directory):
    sweep.json        the spec as run (name, grid, search, report) and each trial's full config
    runs/NAME/        one ordinary run directory per trial (config.toml, checkpoint.pt, best.pt,
                      metrics.csv, ...: `eqtrade backtest` and `compare` work on it unchanged),
                      plus trial.json (node, status) once the trial has finished
    tune/             Ray Tune's experiment state and per-trial logs (what `--resume` restores)
    report/           the final table (`compare` on the finished runs, on the report split, once)

A trial (by default `train_trial`: `eqtrade.run.train`) reports its evaluation row to Tune at every
evaluation, and checkpoints through the agent's own checkpoint.pt in its run directory: a trial
that is restarted (a lost node: Ray's FailureConfig; an interrupted sweep: `--resume`) continues
from that checkpoint, and a finished trial is never run again. Trials read and write OUT and the
data directory by absolute path: on a cluster both must be on a filesystem every node shares
(the choice made here, rather than shipping datasets with each trial; bundled data ships with the
package), and the eqtrade package is sent to the workers with the job (Ray's runtime env).
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger(__name__)

TRIAL_DONE = "trial.json"


def trial_done(run_dir: Path) -> bool:
    """Whether a trial's run directory records a finished trial."""
    p = Path(run_dir) / TRIAL_DONE
    return p.exists() and json.loads(p.read_text()).get("status") == "finished"


def _mark(run_dir: Path, **info) -> None:
    from ..util import atomic_write_bytes

    atomic_write_bytes(Path(run_dir) / TRIAL_DONE, json.dumps(info, indent=1).encode())


def _node() -> str:
    try:
        import ray

        return ray.get_runtime_context().get_node_id()
    except Exception:  # outside Ray (a trial function called directly)
        return "local"


def resumed_config(cfg: dict, run_dir: Path) -> dict:
    """The config a trial with a checkpoint continues with: its run directory's config.toml (every
    option resolved, as its checkpoint was trained: what `eqtrade train --resume` reads), with the
    trial's step budget, threads and device (what a resume may change). The trial's own config is
    the spec's, unresolved: compared with the checkpoint, it would read as an edit."""
    from ..strategies import load_toml

    saved = load_toml(Path(run_dir) / "config.toml")
    changed = _spec_change(cfg, saved)
    if changed:
        raise ValueError(f"{run_dir} was started with {changed}: the spec changed since this trial "
                         "began; restore the spec to resume, or start afresh with --force")
    saved.setdefault("run", {})["steps"] = cfg["run"]["steps"]
    if "threads" in cfg["run"]:
        saved["run"]["threads"] = cfg["run"]["threads"]
    if "device" in cfg.get("agent", {}):
        saved.setdefault("agent", {})["device"] = cfg["agent"]["device"]
    return saved


#: what a resumed trial may change: its step budget, threads and device
_MAY_CHANGE = {("run", "steps"), ("run", "threads"), ("agent", "device")}


def _spec_change(given: dict, saved: dict, at: tuple = ()) -> str | None:
    """The first value the trial's config sets that its run's config.toml holds otherwise, as
    "[table] key = saved, but the spec now says given" (None: none). The saved config holds more
    (every option resolved): only what the spec sets is compared."""
    from ..run import toml_plain

    for k, v in given.items():
        where = (*at, k)
        if where[:2] in _MAY_CHANGE:
            continue
        if isinstance(v, dict) and isinstance(saved.get(k), dict):
            found = _spec_change(v, saved[k], where)
            if found:
                return found
            continue
        was = saved.get(k)
        if k in saved and toml_plain(v) != toml_plain(was):
            name = f"[{where[0]}] {'.'.join(map(str, where[1:]))}" if len(where) > 1 else k
            return f"{name} = {was!r}, but the spec now says {v!r}"
    return None


def train_trial(cfg: dict, run_dir: Path, report: Callable[[dict], None]) -> dict:
    """One sweep trial of `eqtrade train`: train (or resume) in run_dir, report every evaluation."""
    from ..run import train

    resume = (run_dir / "checkpoint.pt").exists()
    if resume:
        cfg = resumed_config(cfg, run_dir)
    reported = []

    def on_eval(row):
        reported.append(row["step"])
        report(row)

    agent, _ = train(cfg, out=run_dir, resume=resume, progress=False, on_eval=on_eval)
    evals = [m for m in agent.metrics if "eval_return" in m]
    if evals and not reported:  # a resumed trial that had nothing left to train still tells Tune where it ended
        report(evals[-1])
    return {"steps": agent.step, "best_eval": agent.best_eval}


#: grid trials per stacked trial by default (`--pack`): a study's usual 5 seeds of one setting in
#: one trial. Larger stacks give more steps/s per CPU (`bench/bench_stack.py curve`: 1.8x at K = 5,
#: 2.4x at K = 15 against K = 1 on the portfolio default) but fewer trials to spread over CPUs
DEFAULT_PACK = 5
#: what may differ between the trials of one pack: the seed, and the data of the envs (folds) and
#: the checkpoint a warm-started fold starts from
PACK_FREE = (("agent", "seed"), ("env", "split"), ("eval_env", "split"), ("run", "init_from"))


def _predecessors(names: list[str], trials: dict[str, dict], out) -> dict[str, str]:
    """Trial -> the trial whose best.pt its [run] init_from is (OUT/runs/NAME/best.pt: a
    warm-started walk-forward fold and the fold before it); trials starting from anything else
    (or from nothing) have none."""
    if out is None:
        return {}
    runs = Path(out).resolve() / "runs"
    where = {str(runs / n / "best.pt"): n for n in names}
    pred = {}
    for n in names:
        src = trials[n].get("run", {}).get("init_from") or ""
        if src and str(Path(src).resolve()) in where and where[str(Path(src).resolve())] != n:
            pred[n] = where[str(Path(src).resolve())]
    return pred


def _chains(names: list[str], trials: dict[str, dict], out=None) -> list[list[str]]:
    """Trials grouped into chains of warm starts (`_predecessors`), each in training order (a
    trial after the one it starts from; a predecessor with several successors keeps them all in
    its chain); a trial without one is a chain of its own. Every name is in exactly one chain."""
    pred = _predecessors(names, trials, out)
    root = {}

    def find(n, seen=()):
        if n in root:
            return root[n]
        if n in seen:  # a cycle of warm starts: no order exists
            raise ValueError(f"sweep trials start from each other in a cycle ({' -> '.join(seen)}); check [run] init_from")
        root[n] = find(pred[n], (*seen, n)) if n in pred else n
        return root[n]

    depth = {}

    def level(n):
        if n not in depth:
            depth[n] = level(pred[n]) + 1 if n in pred else 0
        return depth[n]

    groups: dict[str, list[str]] = {}
    for n in names:
        groups.setdefault(find(n), []).append(n)
    chains = [sorted(g, key=lambda n: (level(n), names.index(n))) for g in groups.values()]
    assert sorted(n for c in chains for n in c) == sorted(names)
    return chains


def waves(names: list[str], trials: dict[str, dict], out=None) -> list[list[str]]:
    """The trials of a pack in the order they can train: wave k holds the trials k warm starts
    from the start of their chain, so a warm-started trial trains after the one it starts from."""
    pred = _predecessors(names, trials, out)
    depth: dict[str, int] = {}
    for c in _chains(names, trials, out):
        for n in c:  # (in training order: a predecessor comes first)
            depth[n] = depth[pred[n]] + 1 if n in pred else 0
    return [[n for n in names if depth[n] == k] for k in range(max(depth.values(), default=-1) + 1)]


def _stackable(cfg: dict) -> bool:
    """Whether a trial's runs can train side by side as a stack (SAC or DQN, a grid trial)."""
    return cfg.get("run", {}).get("algo") in ("sac", "dqn") and "dir" not in cfg


#: the cost of one step of a stack of K runs, in units of one run's share: STACK_FIXED + K (a
#: straight line through `bench/bench_stack.py curve` on the portfolio default, 2026-12-07: 13.2 /
#: 20.2 / 38.3 / 101.6 ms per step at K = 1 / 5 / 15 / 50, i.e. 11.2 ms + 1.8 ms per run)
STACK_FIXED = 6.0


def _makespan(sizes: list[int], slots: int) -> float:
    """The wall time of packs of `sizes` started in this order on `slots` CPUs, each as soon as
    one is free (Ray Tune's order for a grid), in the cost units of STACK_FIXED."""
    free = [0.0] * max(1, slots)
    for k in sizes:
        i = free.index(min(free))
        free[i] += STACK_FIXED + k
    return max(free)


def _even(n: int, parts: int) -> list[int]:
    """n split into `parts` sizes that differ by at most one, the larger first."""
    return [n // parts + (i < n % parts) for i in range(parts)]


def _balanced(counts: list[int], pack: int, slots: int) -> list[list[int]]:
    """Pack sizes for groups of `counts` runs, at most `pack` per pack: packs of `pack` (the last
    one smaller), or each group split evenly into as few packs, or into up to slots - 1 more,
    whichever gives the shortest estimated wall time (`_makespan`; ties: the first of these). On 2
    CPUs three groups of 5 train as 5, 5, 3 + 2 instead of leaving one CPU idle while the last 5
    train alone."""
    plain = [[min(pack, n - i) for i in range(0, n, pack)] for n in counts]
    best, cost = plain, _makespan([k for g in plain for k in g], slots)
    parts = [max(1, -(-n // pack)) for n in counts]
    for extra in range(max(1, slots)):
        if extra:  # one more pack for the group whose packs are the largest (ties: the last group)
            i = max(range(len(counts)), key=lambda j: (-(-counts[j] // parts[j]) if parts[j] < counts[j] else 0, j))
            if parts[i] >= counts[i]:
                break
            parts[i] += 1
        sizes = [_even(n, p) for n, p in zip(counts, parts)]
        c = _makespan([k for g in sizes for k in g], slots)
        if c < cost:
            best, cost = sizes, c
    return best


def pack_trials(trials: dict[str, dict], pack: int, out=None, slots: int | None = None) -> dict[str, list[str]]:
    """Grid trials grouped into packs of at most `pack` that train as one stack of runs
    (eqtrade.agents.stack): SAC (or DQN) runs whose configs differ only in PACK_FREE, in grid order;
    every other trial is a pack of its own. A chain of warm starts ([run] init_from: walk-forward
    folds with warm_start, whose best.pt is in `out`/runs) is never split, and counts as one
    towards `pack`. slots: the CPUs (one trial each) the packs share: a group's runs are split
    evenly, and into more packs where that leaves fewer CPUs idle (`_balanced`); None, and
    whenever warm starts chain trials: packs of `pack` in grid order. Returns pack name ->
    its trials' names (a pack of one keeps the trial's name; a larger one is named after its
    first trial: "NAME+3")."""
    groups: dict[str, list[str]] = {}
    chained = bool(_predecessors(list(trials), trials, out))
    for name, cfg in trials.items():
        key = name
        if (pack > 1 and _stackable(cfg)) or chained:  # (a chain stays together whatever the packing)
            free = copy.deepcopy(cfg)
            for table, k in PACK_FREE:
                free.get(table, {}).pop(k, None)
            key = "\0" + json.dumps(free, sort_keys=True, default=str)
        groups.setdefault(key, []).append(name)
    packs: dict[str, list[str]] = {}
    chains = [_chains(names, trials, out) for names in groups.values()]
    pers = [max(1, pack) if _stackable(trials[names[0]]) else 1 for names in groups.values()]
    sizes = (_balanced([len(c) for c in chains], max(1, pack), slots) if slots and slots > 1 and not chained
             and pack > 1 else [[per] * -(-len(c) // per) for c, per in zip(chains, pers)])
    for group, cut in zip(chains, sizes):
        # whole chains of warm starts go together (their trials train one after another), up to
        # `pack` chains (e.g. seeds) side by side; without warm starts every chain is one trial
        # (a trial that cannot stack is a group of its own, or packs of one: `pers`)
        i = 0
        for k in cut:
            chunk = [n for c in group[i : i + k] for n in c]
            i += k
            packs[chunk[0] if len(chunk) == 1 else f"{chunk[0]}+{len(chunk) - 1}"] = chunk
    return packs


def train_pack(cfgs: list[dict], run_dirs: list[Path], report: Callable[[dict], None]) -> list[dict]:
    """The trials of one pack trained as one stack of runs (`eqtrade.run.train_many`), each in its
    own run directory; Tune gets the mean over the pack of each evaluation row ("runs": how many).
    Runs with a checkpoint resume; runs without one start (as a stack of their own, first)."""
    from ..run import train_many

    info: dict[int, dict] = {}
    for resume in (False, True):
        idx = [i for i, d in enumerate(run_dirs) if (Path(d) / "checkpoint.pt").exists() == resume]
        if not idx:
            continue
        on_eval = _pack_reporter(len(idx), report)
        run = [resumed_config(cfgs[i], Path(run_dirs[i])) if resume else cfgs[i] for i in idx]
        done = train_many(run, [Path(run_dirs[i]) for i in idx], resume=resume, progress=False,
                          on_evals=[on_eval] * len(idx))
        for i, (agent, _) in zip(idx, done):
            info[i] = {"steps": agent.step, "best_eval": agent.best_eval, "stacked_with": len(cfgs)}
    return [info[i] for i in range(len(cfgs))]


def _pack_reporter(n: int, report: Callable[[dict], None]) -> Callable[[dict], None]:
    """An on_eval for each of n runs stepping together: once all n have evaluated a step, their
    mean row goes to `report` (a number missing from a run's row counts as NaN)."""
    rows: dict[int, list[dict]] = {}

    def on_eval(row):
        got = rows.setdefault(row["step"], [])
        got.append(row)
        if len(got) == n:
            keys = [k for k, v in got[0].items() if isinstance(v, (int, float)) and k != "step"]
            mean = {k: sum(float("nan") if r.get(k) is None else float(r[k]) for r in got) / n for k in keys}
            report({"step": row["step"], **mean, "runs": n})
            del rows[row["step"]]

    return on_eval


def _tune_metrics(row: dict) -> dict:
    """What a trial reports to Tune: the evaluation row's numbers (NaN-free, floats)."""
    import math

    out = {}
    for k, v in row.items():
        if isinstance(v, (int, float)) and not (isinstance(v, float) and math.isnan(v)):
            out[k] = float(v)
    return out


def _trainable(config: dict, trials: dict, out: str, trial_fn: Callable, skip_done: bool,
               packs: dict | None = None) -> None:
    """Ray Tune's function trainable: one trial (by name, or sampled values applied to the base),
    or a pack of grid trials trained as one stack (`packs`: pack name -> trial names)."""
    import torch
    from ray import tune

    from .spec import set_dotted

    torch.set_num_threads(1)  # OMP_NUM_THREADS=1 comes with the job's runtime env (_init_ray)
    logging.getLogger("absl").setLevel(logging.ERROR)
    if "trial" in config and packs and len(packs.get(config["trial"], ())) > 1:
        return _pack_trainable(packs[config["trial"]], trials, out, skip_done)
    if "trial" in config:  # a grid trial, by name
        name = config["trial"]
        cfg = copy.deepcopy(trials[name])
    else:  # a search: the sampled values on the base tables
        name = tune.get_context().get_trial_id()
        tables = copy.deepcopy(trials["__base__"])
        for k, v in _flatten(config).items():
            set_dotted(tables, k, v)
        cfg = resolve_trial_config(tables)
    run_dir = Path(cfg["dir"]) if "dir" in cfg else Path(out) / "runs" / name
    if skip_done and trial_done(run_dir):
        return  # finished in an earlier session of this sweep: never run again (else trial_fn decides)
    run_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()

    def report(row):
        tune.report(_tune_metrics(row))

    from ..lock import locked

    # the trial's own run directory (the driver locks the sweep's files); the tag lets a trial
    # that Tune restarts on another node take over the lock its lost node left
    with locked(run_dir, f"eqtrade sweep trial {name}", tag=f"sweep:{Path(out).resolve()}"):
        info = trial_fn(cfg, run_dir, report)
        _mark(run_dir, status="finished", node=_node(), seconds=time.time() - t0, **info)


def _pack_trainable(names: list[str], trials: dict, out: str, skip_done: bool) -> None:
    """A pack of grid trials: the unfinished ones trained as one stack, each marked finished."""
    from contextlib import ExitStack

    from ray import tune

    from ..lock import locked

    dirs = {n: Path(out) / "runs" / n for n in names}
    todo = [n for n in names if not (skip_done and trial_done(dirs[n]))]
    if not todo:
        return
    t0 = time.time()
    with ExitStack() as held:
        for n in todo:
            dirs[n].mkdir(parents=True, exist_ok=True)
            held.enter_context(locked(dirs[n], f"eqtrade sweep trial {n}", tag=f"sweep:{Path(out).resolve()}"))
        for wave in waves(todo, trials, out):  # warm-started folds after the fold they start from
            infos = train_pack([copy.deepcopy(trials[n]) for n in wave], [dirs[n] for n in wave],
                               lambda row: tune.report(_tune_metrics(row)))
            for n, info in zip(wave, infos):
                _mark(dirs[n], status="finished", node=_node(), seconds=time.time() - t0, **info)


def _last_eval(run_dir: Path, metric: str) -> tuple[Any, Any]:
    """(step, metric) of a run's last evaluation in its metrics.csv; (None, None) if none."""
    import csv

    try:
        with open(Path(run_dir) / "metrics.csv", newline="") as fh:
            rows = [r for r in csv.DictReader(fh) if r.get("eval_return")]
    except OSError:
        return None, None
    if not rows:
        return None, None
    last = rows[-1]
    try:
        return int(float(last["step"])), float(last[metric]) if last.get(metric) else None
    except (KeyError, ValueError):
        return None, None


def _flatten(tree: dict, prefix: str = "") -> dict:
    """{"agent": {"lr": 1e-3}} -> {"agent.lr": 1e-3} (the sampled values of a search trial)."""
    out = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def resolve_trial_config(tables: dict) -> dict:
    """The full run config of a trial, checked as far as it can be without training: the env is
    built (resolve_config) and the agent's options parsed (types, family)."""
    from ..agents import ALGOS
    from ..run import resolve_config
    from ..nn.factory import FAMILIES

    cfg = resolve_config(tables=tables)
    ALGOS[cfg["run"]["algo"]].config_cls.from_dict(cfg["agent"])
    family = cfg["agent"].get("family")
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; use {', '.join(FAMILIES)}")
    return cfg


def check_search_space(base: dict, space: dict) -> None:
    """A search's trials are sampled while the sweep runs: resolve the base config at the ends of
    every range (each choice), all combinations of them (one key at a time past 64 combinations),
    so that a range that reaches a refused value (a step budget below learning_starts, an agent
    option out of its range) fails before any trial runs."""
    from .spec import set_dotted

    ends = {}
    for k, (dist, args) in space.items():
        if dist == "choice":
            ends[k] = list(args)
        elif dist == "randint":  # Ray Tune's randint excludes the upper bound
            ends[k] = [args[0], args[1] - 1] if isinstance(args[1], int) and args[1] > args[0] else list(args)
        else:
            ends[k] = list(args)
    keys = list(ends)
    n = 1
    for k in keys:
        n *= len(ends[k])
    combos = (itertools.product(*(ends[k] for k in keys)) if n <= 64 else
              ([v if j == i else ends[k][0] for j, k in enumerate(keys)] for i in range(len(keys)) for v in ends[keys[i]]))
    for values in combos:
        tables = copy.deepcopy(base)
        for k, v in zip(keys, values):
            set_dotted(tables, k, v)
        try:
            resolve_trial_config(tables)
        except (ValueError, TypeError, FileNotFoundError) as e:
            at = ", ".join(f"{k} = {v!r}" for k, v in zip(keys, values))
            raise ValueError(f"[sweep.search] reaches a refused config at {at}: {e}") from None


def trial_configs(spec, data_dir=None) -> dict[str, dict]:
    """Every grid trial's full run config, resolved now (a bad option fails before any trial runs)."""
    from .spec import set_dotted

    out = {}
    for name, over in spec.trials():
        tables = copy.deepcopy(spec.base)
        for k, v in over.items():
            set_dotted(tables, k, v)
        if data_dir is not None:
            tables.setdefault("env", {})["data_dir"] = str(Path(data_dir).resolve())
        try:
            out[name] = resolve_trial_config(tables)
        except (ValueError, TypeError, FileNotFoundError) as e:
            raise ValueError(f"sweep trial {name}: {e}") from None
    return out


def _init_ray(address: str | None, cpus: int | None, gpus: float) -> bool:
    """Join the cluster at `address`, or start a local instance; False if Ray was already running."""
    import ray

    if ray.is_initialized():
        return False
    pkg = str(Path(__file__).resolve().parents[1])  # the eqtrade package, shipped to cluster workers
    env_vars = {"OMP_NUM_THREADS": "1", "MUJOCO_GL": os.environ.get("MUJOCO_GL", "disable")}
    if address:
        ray.init(address=address, runtime_env={"py_modules": [pkg], "env_vars": env_vars},
                 logging_level=logging.WARNING, log_to_driver=False)
    else:
        # the instance eqtrade starts for itself: Ray's notice that it enables token authentication
        # by default (with how to opt out) says nothing to do, on every sweep; dropped
        notice = logging.getLogger("ray._private.authentication.authentication_token_setup")
        notice.addFilter(_no_token_notice)
        try:
            ray.init(num_cpus=cpus or os.cpu_count() or 1, num_gpus=gpus or None, include_dashboard=False,
                     logging_level=logging.WARNING, log_to_driver=False, runtime_env={"env_vars": env_vars})
        finally:
            notice.removeFilter(_no_token_notice)
    return True


def _no_token_notice(record: logging.LogRecord) -> bool:
    return "Token authentication is enabled" not in record.getMessage()


def _no_tune_resume_hint(record: logging.LogRecord) -> bool:
    """Ray Tune's own "Resume experiment with: Tuner.restore(...)" after a Ctrl-C (a Python call):
    dropped, since eqtrade prints the command that resumes a sweep (`--resume`)."""
    return "Tuner.restore(" not in record.getMessage()


def run_trials(trials: dict[str, dict], out: Path, trial_fn: Callable = train_trial, metric: str = "eval_return",
               mode: str = "max", address: str | None = None, cpus: int | None = None,
               gpus_per_trial: float = 0.0, resume: bool = False, max_failures: int = 1,
               search: dict | None = None, progress: bool = True,
               columns: tuple = ("step", "eval_return", "eval_sharpe"), fresh: bool = False,
               pack: int = 1, pack_slots: int | None = None) -> list[dict]:
    """Run trials on Ray Tune; returns one row per trial: name, status, error, run directory.

    trials: name -> config (a grid), or with `search`, the base config under "__base__" and the
    search's space/samples/grace. trial_fn(cfg, run_dir, report) -> info runs one trial (default
    `train_trial`, i.e. `eqtrade train`; the dm_control suite passes its own, whose run directory
    is the config's "dir"). fresh: a new Tune experiment even where one exists (the dm_control
    suite, whose runs decide themselves whether they are finished); finished trials are skipped
    unless `fresh`. pack: grid trials of the default `train_trial` that can stack (`pack_trials`)
    train K at a time as one trial of one CPU (searches keep one run per trial: their scheduler
    stops trials one by one); the rows are still one per grid trial. pack_slots: the CPUs the packs
    are balanced over (`pack_trials`; None: packs of `pack` in grid order)."""
    import ray
    from ray import tune
    from ray.tune import CLIReporter

    out = Path(out).resolve()
    exp = out / "tune"
    if fresh and exp.exists():
        import shutil

        shutil.rmtree(exp)
    packs = (pack_trials(trials, pack, out, pack_slots) if search is None and trial_fn is train_trial
             else {n: [n] for n in trials})
    started = _init_ray(address, cpus, gpus_per_trial)
    try:
        fn = tune.with_parameters(_trainable, trials=trials, out=str(out), trial_fn=trial_fn, skip_done=not fresh,
                                  packs=packs)
        fn = tune.with_resources(fn, {"cpu": 1, "gpu": gpus_per_trial})
        reporter = CLIReporter(metric_columns=list(columns), parameter_columns=["trial"], max_report_frequency=30,
                               max_progress_rows=40)
        run_config = tune.RunConfig(name="tune", storage_path=str(out), verbose=1 if progress else 0,
                                    failure_config=tune.FailureConfig(max_failures=max_failures),
                                    progress_reporter=reporter if progress else None,
                                    checkpoint_config=tune.CheckpointConfig(num_to_keep=1))
        if resume and tune.Tuner.can_restore(str(exp)):
            tuner = tune.Tuner.restore(str(exp), trainable=fn, resume_errored=True)
        else:
            if search is None:
                param_space = {"trial": tune.grid_search(list(packs))}
                tune_config = tune.TuneConfig(reuse_actors=False)
            else:
                param_space, tune_config = _search_space(search, metric, mode)
            tuner = tune.Tuner(fn, param_space=param_space, tune_config=tune_config, run_config=run_config)
        tune_log = logging.getLogger("ray.tune.tune")
        tune_log.addFilter(_no_tune_resume_hint)
        try:
            # without progress, nothing of Tune's own on stdout either: its box of the experiment's
            # configuration and a TensorBoard hint into Ray's temporary session (gone afterwards)
            with open(os.devnull, "w") as devnull, contextlib.nullcontext() if progress else contextlib.redirect_stdout(devnull):
                grid = tuner.fit()
        finally:
            tune_log.removeFilter(_no_tune_resume_hint)
    finally:
        if started:
            ray.shutdown()
    rows = []
    for r in grid:
        tname = (r.config or {}).get("trial") or Path(r.path).name
        members = packs.get(tname, [tname])
        for name in members:
            run = Path(trials[name]["dir"]) if name in trials and "dir" in trials[name] else out / "runs" / name
            metrics = r.metrics or {}
            # stopped: ended early by the search's scheduler (ASHA); unfinished: interrupted, to resume
            status = ("finished" if trial_done(run) else "error" if r.error
                      else "stopped" if metrics.get("done") and search is not None else "unfinished")
            step, value = (metrics.get("step"), metrics.get(metric)) if len(members) == 1 else _last_eval(run, metric)
            rows.append({"trial": name, "status": status, "error": str(r.error or "")[-2000:], "run": str(run),
                         "step": step, metric: value, "pack": tname if len(members) > 1 else None,
                         "params": _flatten({k: v for k, v in (r.config or {}).items() if k != "trial"})})
    return rows


def _search_space(search: dict, metric: str, mode: str):
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch

    make = {"uniform": tune.uniform, "loguniform": tune.loguniform, "randint": tune.randint,
            "choice": lambda *a: tune.choice(list(a))}
    # "agent.lr" is the nested space {"agent": {"lr": ...}}: Tune flattens nested spaces itself
    space: dict[str, Any] = {}
    for k, (d, a) in search["space"].items():
        node = space
        parts = k.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = make[d](*a)
    scheduler = ASHAScheduler(time_attr="step", grace_period=max(1, search["grace"]), reduction_factor=2,
                              max_t=max(search["max_steps"], search["grace"]) + 1) if search["grace"] else None
    cfg = tune.TuneConfig(search_alg=OptunaSearch(seed=0), scheduler=scheduler, num_samples=search["samples"],
                          metric=metric, mode=mode, reuse_actors=False,
                          trial_dirname_creator=lambda t: t.trial_id)
    return space, cfg
