"""Stacked runs (eqtrade train --seeds) against the same runs as single-run processes.

    .venv/bin/python bench/bench_stack.py anchor [--seeds 10] [--steps 4000] [--repeats 3] [--env portfolio]
    .venv/bin/python bench/bench_stack.py curve [--ks 1,5,15,50] [--window 1000]
    .venv/bin/python bench/bench_stack.py gpu [--ks 1,16,256] [--window 1000]
    .venv/bin/python bench/bench_stack.py memory [--ks 1,5,20] [--steps 3000]
    .venv/bin/python bench/bench_stack.py malloc [--k 5] [--repeats 3]
    .venv/bin/python bench/bench_stack.py update [--ks 1,5,15] [--against REF] [--repeats 3] [--family F]
    .venv/bin/python bench/bench_stack.py sample [--ks 5,15] [--used 2000,30000] [--repeats 3]
    .venv/bin/python bench/bench_stack.py compile [--ks 1,15]
    .venv/bin/python bench/bench_stack.py profile [--ks 1,5,15] [--updates 50]
    .venv/bin/python bench/bench_stack.py phases [--ks 15] [--window 1000]
    .venv/bin/python bench/bench_stack.py parts [--ks 1,5,15] [--family F]
    .venv/bin/python bench/bench_stack.py batch [--ks 1,5,15] [--batches 8,64,256] [--repeats 3]
    .venv/bin/python bench/bench_stack.py gemm [--threads 1,2] [--repeats 3]

anchor: N seeds of the default strategy (strategies/sac-relaxed.toml; or --env dmc/DOMAIN-TASK with
  the plain 2x256 SAC) trained (1) as N single-run `eqtrade train` processes, one torch thread
  each, two at a time on the 2 cores (the anchor), and (2) as two `eqtrade train --seeds`
  processes, one stack of N/2 runs per core, in the same invocation, interleaved over the
  repeats. Steps/s counts every run's training steps over the whole wall time: process start,
  the random-action phase, updates and evaluations included. Prints each repeat and the ratio.
curve: aggregate steady-state steps/s of a stack of K runs against K: two processes (one per
  core) each train a stack of K runs past learning_starts, then time `--window` further steps,
  evaluations included at the strategy's rate (one per 1 000 steps, the training split at every
  5th); the sum of the two processes' steps/s is printed for each K.
malloc: ms per stacked update of K runs with glibc told to keep freed memory
  (`eqtrade.util.keep_freed_memory`, every training loop's default) and without it
  (EQTRADE_KEEP_FREED_MEMORY=0), each in its own process, interleaved over the repeats.
update: ms per SAC update of a stack of K default-strategy runs (K = 1: a run alone, unstacked),
  each K in its own process, this checkout against the commit REF (default HEAD; checked out in a
  temporary git worktree) interleaved over the repeats: the anchor for a change to the update;
  --family plain|exact|relaxed: the default strategy with that family (the §1b study's three).
sample: ms per stacked replay sample (batch 256, as rows) of K buffers of the default strategy's
  shape holding U random transitions, with the replay on transparent huge pages
  (EQTRADE_HUGEPAGES=1, eqtrade.agents.buffer.zeros) and on 4 KiB pages (the default), each in its
  own process.
compile: ms per update of a stack of K default-strategy runs eager and with torch.compile wrapped
  around its networks' forward (inductor, CPU), after every call signature has compiled once.
profile: where one update's time goes, in this process: its FLOPs (torch's FlopCounterMode), ms,
  the rate achieved against this core's rate for a matrix product, and the ops with the most self
  CPU time (torch.profiler), for stacks of K default-strategy runs and for bench_agents.py's
  Pendulum SAC (plain 2x256): whether an update is bound by arithmetic or by everything else.
phases: where a steady-state step of a stack of K default-strategy runs goes, in this process (one
  thread): the share of the wall time over --window steps after learning starts in updates, acting,
  env steps with the replay writes, the batched evaluations (their rollouts included) and the
  other callbacks.
parts: ms per update of a stack of K default-strategy runs (K = 1: a stack of one) by part, each
  part's own time (the parts it calls excluded; perf_counter around the real update's pieces:
  torch.profiler's per-op overhead inflates these small elementwise ops several times): the
  replay sample, the actor, the policy sampling around it, the critics, the target critics, the
  exact reward, the regularisers, each loss's backward with its Adam step, α and the target update.
batch: ms per update of a stack of K default-strategy runs (K = 1: a run alone) at each replay
  batch size (the strategy's is 256), each (K, batch) in its own process, interleaved over the
  repeats; then the least-squares line through each repeat's points, ms = fixed + slope x batch:
  the fixed part (op dispatch, Python, the per-run loops: what batch 0 would cost) and the part
  that grows with the data (each run's 256 x 20 asset rows), per run, as ranges over the repeats.
gemm: the matrix products of eqtrade.nn.gemm.linear, oneDNN's kernels, against torch's own
  (F.linear: MKL on the x86 wheels), at each thread count: microseconds per product for the
  networks' shapes (a 2x256 hidden layer in the three operand layouts the forward and backward
  use, dm_control's first and a critic's last layer, a per-asset layer as rows, DrQ-v2's head and
  trunk), then ms per update of bench_agents.py's
  Pendulum SAC (plain 2x256, batch 256) with oneDNN switched on and off (`gemm.use_onednn`) in
  interleaved blocks of 50 updates in one process, as ranges over the repeats.
gpu: steady-state steps/s (as curve measures them) of one process training a stack of K runs with
  --device cuda, each K in its own process; refused where torch sees no CUDA device.
memory: peak resident memory (VmHWM) of one process training a stack of K runs for --steps, and
  the replay memory those steps fill (K x steps x bytes per transition).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

STRATEGY = "strategies/sac-relaxed.toml"


def _train_cmd(env: str, steps: int, out: Path, seeds: list[int]) -> list[str]:
    cmd = [sys.executable, "-m", "eqtrade.cli", "train", "--steps", str(steps), "--out", str(out), "--no-progress",
           "--device", "cpu", "--threads", "1"]
    cmd += ["--config", STRATEGY] if env == "portfolio" else ["--env", env, "--agent", "plain"]
    if len(seeds) == 1:
        return cmd + ["--seed", str(seeds[0])]
    return cmd + ["--seeds", ",".join(map(str, seeds))]


def _run(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, MUJOCO_GL="egl"))
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{p.stderr[-2000:]}")
    return time.perf_counter() - t0


def anchor(args) -> None:
    seeds = list(range(args.seeds))
    half = (len(seeds) + 1) // 2
    print(f"{args.env}: {len(seeds)} seeds x {args.steps} steps, one torch thread per process, 2 processes at a time")
    rows = []
    for rep in range(args.repeats):
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            with ThreadPoolExecutor(2) as pool:
                list(pool.map(_run, [_train_cmd(args.env, args.steps, Path(d) / f"a{s}", [s]) for s in seeds]))
            single = time.perf_counter() - t0
            t0 = time.perf_counter()
            with ThreadPoolExecutor(2) as pool:
                list(pool.map(_run, [_train_cmd(args.env, args.steps, Path(d) / f"s{k}", part)
                                     for k, part in enumerate((seeds[:half], seeds[half:])) if part]))
            stacked = time.perf_counter() - t0
        total = len(seeds) * args.steps
        rows.append((single, stacked))
        print(f"repeat {rep + 1}: single-run processes {single:.0f} s ({total / single:.0f} steps/s), two stacks of "
              f"{half} {stacked:.0f} s ({total / stacked:.0f} steps/s): {single / stacked:.2f}x", flush=True)
    ratios = sorted(a / b for a, b in rows)
    print(f"stacked / single-run processes: {ratios[0]:.2f}x - {ratios[-1]:.2f}x over {len(rows)} repeats")


def _runs(k: int, env: str, **agent) -> tuple[list, dict]:
    """In this process (one torch thread): k runs (seeds 0..k-1) of the default strategy (or the
    plain dm_control SAC), no checkpoints, `agent` overriding [agent] options; and their config."""
    import copy

    import torch

    from eqtrade.run import build_agent, resolve_config

    torch.set_num_threads(1)
    cfg = resolve_config(STRATEGY) if env == "portfolio" else resolve_config(env=env, agent="plain")
    cfg["agent"].update(checkpoint_every=0, **agent)
    agents = []
    for s in range(k):
        c = copy.deepcopy(cfg)
        c["agent"]["seed"] = s
        agents.append(build_agent(c))
    return agents, cfg


def _eval_stack(k: int, env: str, **agent):
    """`_runs` and their evaluation callbacks at the strategy's rate (no files)."""
    from eqtrade.agents.callbacks import EvalCallback
    from eqtrade.run import run_callbacks

    agents, cfg = _runs(k, env, **agent)
    d = tempfile.mkdtemp()
    cbs = [[cb for cb in run_callbacks(a, cfg, Path(d) / f"r{i}", progress=False) if isinstance(cb, EvalCallback)]
           for i, a in enumerate(agents)]  # the evaluation only (no files)
    for run in cbs:
        for cb in run:
            cb.best_path = None
    return agents, cbs


def _worker(k: int, window: int, steps: int | None, env: str, device: str = "cpu") -> dict:
    """In this process: a stack of k runs of the default strategy on `device`; steady-state
    steps/s over `window` steps after learning_starts (or peak RSS after `steps`)."""
    from eqtrade.agents.stack import learn_stack

    agents, cbs = _eval_stack(k, env, device=device)
    start = agents[0].config.learning_starts
    learn_stack(agents, start, cbs)
    if steps is not None:
        learn_stack(agents, steps, cbs)
        with open("/proc/self/status") as fh:
            hwm = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM"))
        b = agents[0].buffer
        # the arrays the replay keeps (next_obs whole, or a sliding window's new part next_new)
        per = sum(a.itemsize * a[0].size for a in (getattr(b, n) for n in ("obs", "next_obs", "next_new", "actions",
                                                                           "rewards", "extras")) if a is not None)
        return {"rss_mb": hwm / 1024, "replay_mb": k * len(b) * per / 2**20}
    # the window ends just after an evaluation, so that evaluations count at their rate
    every = agents[0].config.eval_every or window
    end = ((start + window) // every) * every
    if end <= start:  # no evaluation inside the window: the window as asked
        end = start + max(1, window)
    t0 = time.perf_counter()
    learn_stack(agents, end, cbs)
    return {"steps_per_s": k * (end - start) / (time.perf_counter() - t0), "window": end - start}


def _child(call: str, root: Path | None = None, failed: str = "", **env):
    """`call` (an expression on this module, e.g. "_update_ms(5)") evaluated in a fresh Python
    process, its result as JSON; root: run against the eqtrade checked out there (a worktree);
    env: variables set for it."""
    code = (f"import json,sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import bench_stack as b; "
            f"print(json.dumps(b.{call}))")
    environ = dict(os.environ, **env, **({"PYTHONPATH": str(root)} if root is not None else {}))
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, env=environ)
    if p.returncode != 0:
        raise SystemExit(f"{failed}{p.stderr[-2000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def _spawn(k: int, window: int, steps: int | None, env: str) -> dict:
    return _child(f"_worker({k}, {window}, {steps!r}, {env!r})", failed=f"stack of {k} failed:\n")


def _update_ms(k: int, family: str = "", batch: int = 0) -> float:
    """In this process: ms per update of a stack of k default-strategy runs (after 20 warm-up
    updates; k = 1: the run's own update, not a stack of one); family: the [agent] family instead
    of the strategy's; batch: the replay batch size instead of the strategy's (0)."""
    stack = _ready_stack(k, family, batch)
    t0 = time.perf_counter()
    for _ in range(50):
        stack.update()
    return (time.perf_counter() - t0) / 50 * 1e3


def _ready_stack(k: int, family: str = "", batch: int = 0):
    """A stack of k default-strategy runs (of `family`, if given; with replay batches of `batch`,
    if given) past learning_starts and 20 warm-up updates (k = 1: the run's own agent, unstacked),
    one torch thread."""
    from eqtrade.agents.stack import StackedSAC, learn_stack

    agents, _ = _runs(k, "portfolio", eval_every=0, **({"family": family} if family else {}),
                      **({"batch_size": batch} if batch else {}))
    learn_stack(agents, agents[0].config.learning_starts + 1, [[] for _ in agents])
    stack = StackedSAC(agents) if k > 1 else agents[0]
    for _ in range(20):
        stack.update()
    return stack


def _pendulum_agent():
    """bench_agents.py's plain SAC on Pendulum-v1 (2x256, batch 256) past its warm-up."""
    import torch

    from eqtrade.agents import SAC, EnvSpec, SACConfig

    torch.set_num_threads(1)
    spec = EnvSpec("Pendulum-v1")
    agent = SAC(spec.make(), SACConfig(family="plain", learning_starts=300, eval_every=0, checkpoint_every=0,
                                       hidden=(256, 256), batch_size=256, seed=0), spec)
    agent.learn(320, progress=False)
    return agent


def _gemm_gflops(m: int, k: int, n: int, seconds: float = 0.5) -> float:
    """This core's rate for one fp32 matrix product [m, k] @ [k, n] (one thread)."""
    import torch

    a, b = torch.randn(m, k), torch.randn(k, n)
    for _ in range(5):
        a @ b
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        reps += 1
    return 2 * m * k * n * reps / (time.perf_counter() - t0) / 1e9


def phases(args) -> None:
    """Where a steady-state step of a stack goes: the share of its wall time in updates, acting
    (training steps), env steps with the replay writes, batched evaluations (their rollouts'
    acting and env steps included) and the other callbacks."""
    import collections

    import eqtrade.agents.stack as st
    from eqtrade.agents.base import Agent

    print(f"{args.env}: one stack of K runs in this process, {args.window} steps after learning starts, "
          "evaluations at the strategy's rate; share of the wall time by phase")
    for k in [int(x) for x in args.ks.split(",")]:
        agents, cbs = _eval_stack(k, args.env)
        start = agents[0].config.learning_starts
        st.learn_stack(agents, start, cbs)
        spent: dict[str, float] = collections.defaultdict(float)
        inside = [False]  # in an evaluation: its acting counts as the evaluation's
        saved = []

        def timed(owner, name, label, evaluation=False):
            f = getattr(owner, name)
            saved.append((owner, name, f))

            def g(*a, **kw):
                if inside[0]:
                    return f(*a, **kw)
                inside[0] = evaluation
                t = time.perf_counter()
                try:
                    return f(*a, **kw)
                finally:
                    spent[label] += time.perf_counter() - t
                    inside[0] = False
            setattr(owner, name, g)

        timed(st.StackedSAC, "update", "updates")
        timed(st.StackedSAC, "act_all", "acting")
        timed(Agent, "_env_step", "env steps + replay writes")
        timed(st, "_batched_evaluations", "evaluations", evaluation=True)
        timed(Agent, "_step_callbacks", "other callbacks")
        try:
            t0 = time.perf_counter()
            st.learn_stack(agents, start + args.window, cbs)
            total = time.perf_counter() - t0
        finally:
            for owner, name, f in reversed(saved):
                setattr(owner, name, f)
        shares = ", ".join(f"{name} {v / total:.0%}" for name, v in spent.items())
        print(f"K = {k:>3}: {k * args.window / total:.0f} steps/s in one process; {shares}; "
              f"the rest {max(0.0, total - sum(spent.values())) / total:.0%}", flush=True)


def profile(args) -> None:
    """Where an update's time goes: its arithmetic (FLOPs counted by torch's FlopCounterMode,
    forward and backward), the rate it achieves against this core's rate for a matrix product, and
    the ops that take the most time (torch.profiler, self CPU time)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile
    from torch.utils.flop_counter import FlopCounterMode

    print("one SAC update, one torch thread: its FLOPs, ms, the rate achieved, and the ops taking the most time")
    print(f"this core: {_gemm_gflops(256, 256, 256):.0f} GFLOP/s for a [256, 256] @ [256, 256] product, "
          f"{_gemm_gflops(8, 33, 5120):.0f} for [8, 33] @ [33, 5120] (a per-asset layer's shape)")
    cases = [(f"portfolio (default strategy), stack of K = {k}", k) for k in (int(x) for x in args.ks.split(","))]
    cases.append(("Pendulum-v1 plain 2x256 batch 256 (bench_agents.py)", 0))
    for name, k in cases:
        learner = _ready_stack(k) if k else _pendulum_agent()
        fc = FlopCounterMode(display=False)
        with fc:
            learner.update()
        flops = fc.get_total_flops()
        t0 = time.perf_counter()
        for _ in range(args.updates):
            learner.update()
        ms = (time.perf_counter() - t0) / args.updates * 1e3
        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(10):
                learner.update()
        ops = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
        total = sum(e.self_cpu_time_total for e in ops)
        top = ", ".join(f"{e.key} {e.self_cpu_time_total / total:.0%}" for e in ops[:6])
        print(f"{name}: {ms:.1f} ms per update ({ms / max(k, 1):.2f} per run), {flops / 1e6:.1f} MFLOP "
              f"({flops / 1e6 / max(k, 1):.1f} per run): {flops / ms / 1e6:.1f} GFLOP/s; most time: {top}", flush=True)


def _parts_ms(k: int, family: str = "", n: int = 40) -> dict:
    """In this process: ms per update of a stack of k default-strategy runs (k = 1: a stack of
    one) by part, each part's own time (the parts it calls excluded): the real update, its pieces
    wrapped with timers."""
    import collections

    from eqtrade.agents.stack import StackedSAC, learn_stack

    agents, _ = _runs(k, "portfolio", eval_every=0, **({"family": family} if family else {}))
    learn_stack(agents, agents[0].config.learning_starts + 1, [[] for _ in agents])
    stack = StackedSAC(agents)
    for _ in range(20):
        stack.update()
    spent: dict[str, float] = collections.defaultdict(float)
    running: list[float] = []  # per running part: the time of the parts it called

    def wrap(owner, name, label):
        f = getattr(owner, name)

        def g(*a, **kw):
            running.append(0.0)
            t = time.perf_counter()
            try:
                return f(*a, **kw)
            finally:
                elapsed = time.perf_counter() - t
                spent[label] += elapsed - running.pop()
                if running:
                    running[-1] += elapsed
        setattr(owner, name, g)

    wrap(stack.buffer, "sample", "replay sample")
    wrap(stack, "_sample", "policy sampling")
    wrap(stack.actor, "forward", "actor")
    wrap(stack.critic, "forward", "critics")
    wrap(stack.critic_target, "forward", "target critics")
    wrap(stack, "_batched", "exact reward")
    wrap(stack.actor, "regularizer", "regularisers")
    wrap(stack.critic, "regularizer", "regularisers")
    wrap(stack, "_critic_step", "critic backward + Adam")
    wrap(stack, "_actor_step", "actor backward + Adam")
    wrap(stack, "_finish", "alpha + target update")
    t0 = time.perf_counter()
    for _ in range(n):
        stack.update()
    total = (time.perf_counter() - t0) / n * 1e3
    out = {name: v / n * 1e3 for name, v in spent.items()}
    out["the rest"] = total - sum(out.values())
    return {"total": total, **out}


def parts(args) -> None:
    """ms per part of one update (exclusive times; perf_counter around the real update's pieces,
    not torch.profiler, whose per-op overhead inflates these small elementwise ops several times)."""
    ks = [int(x) for x in args.ks.split(",")]
    what = f"the {args.family} family" if args.family else "the default strategy"
    print(f"ms per update of a stack of K runs of {what} by part (each part's own time), one thread")
    for k in ks:
        res = _child(f"_parts_ms({k}, {args.family!r})", failed=f"stack of {k} failed:\n")
        total = res.pop("total")
        print(f"K = {k:>3}: {total:5.1f} ms ({total / k:.2f} per run): "
              + ", ".join(f"{name} {ms:.2f}" for name, ms in res.items()), flush=True)


def batch(args) -> None:
    ks = [int(x) for x in args.ks.split(",")]
    sizes = [int(x) for x in args.batches.split(",")]
    if len(set(sizes)) < 2 or min(sizes) < 1:
        raise SystemExit(f"bench_stack.py batch: --batches needs two or more different sizes >= 1, got {args.batches!r}")
    print("ms per update of a stack of K default-strategy runs against the replay batch size (each in its own "
          "process, one thread); fixed + slope x batch fitted per repeat")
    ms = {(k, b): [] for k in ks for b in sizes}
    for rep in range(args.repeats):
        for k in ks:
            for b in sizes:
                ms[k, b].append(_child(f"_update_ms({k}, '', {b})", failed=f"stack of {k}, batch {b} failed:\n"))
            print(f"repeat {rep + 1} K = {k:>3}: " + ", ".join(f"batch {b} {ms[k, b][-1]:.2f} ms" for b in sizes), flush=True)
    for k in ks:
        fixed, data = [], []
        for rep in range(args.repeats):
            ys = [ms[k, b][rep] for b in sizes]
            mx, my = sum(sizes) / len(sizes), sum(ys) / len(ys)
            slope = sum((x - mx) * (y - my) for x, y in zip(sizes, ys)) / sum((x - mx) ** 2 for x in sizes)
            fixed.append(my - slope * mx)
            data.append(slope * 256 / k)
        top = max(sizes)
        print(f"K = {k:>3}: fixed {min(fixed):.2f}-{max(fixed):.2f} ms per update, the data part at batch 256 "
              f"{min(data):.2f}-{max(data):.2f} ms per run; measured at batch {top}: "
              f"{min(ms[k, top]):.2f}-{max(ms[k, top]):.2f} ms per update", flush=True)


def _update_ms_at(root: Path, k: int, family: str = "") -> float:
    return _child(f"_update_ms({k}, {family!r})", root)


def update(args) -> None:
    here = Path(__file__).resolve().parents[1]
    ks = [int(x) for x in args.ks.split(",")]
    with tempfile.TemporaryDirectory() as d:
        ref = Path(d) / "ref"
        subprocess.run(["git", "-C", str(here), "worktree", "add", "--detach", str(ref), args.against],
                       check=True, capture_output=True)
        try:
            sha = subprocess.run(["git", "-C", str(ref), "rev-parse", "--short", "HEAD"], capture_output=True,
                                 text=True).stdout.strip()
            what = f"the {args.family} family" if args.family else "the default strategy"
            print(f"ms per update of a stack of K runs of {what}: this checkout against {args.against} ({sha})")
            res = {k: ([], []) for k in ks}
            for rep in range(args.repeats):
                for k in ks:
                    new, old = _update_ms_at(here, k, args.family), _update_ms_at(ref, k, args.family)
                    res[k][0].append(new)
                    res[k][1].append(old)
                    print(f"repeat {rep + 1} K = {k:>3}: {new:6.1f} ms ({new / k:5.2f} per run) against "
                          f"{old:6.1f} ms: {old / new:.2f}x", flush=True)
            for k in ks:
                r = sorted(o / n for n, o in zip(*res[k]))
                print(f"K = {k:>3}: {args.against} / this checkout {r[0]:.2f}x - {r[-1]:.2f}x over {args.repeats} repeats")
        finally:
            subprocess.run(["git", "-C", str(here), "worktree", "remove", "--force", str(ref)], capture_output=True)


def _sample_ms(k: int, used: int, n: int = 200) -> float:
    """In this process: ms per stacked replay sample (rows, batch 256) of k buffers of the default
    strategy's shape (capacity 100 000, 20 stocks x 33 rows) holding `used` random transitions."""
    import numpy as np
    import torch

    from eqtrade.agents.buffer import ReplayBuffer
    from eqtrade.util import keep_freed_memory

    torch.set_num_threads(1)
    keep_freed_memory()  # as every training loop does (else each 10 MB batch is mapped afresh)
    F, N = 33, 20
    rng = np.random.default_rng(0)
    bufs = [ReplayBuffer(100_000, (F * N,), (N,), seed=s, extra_dim=N) for s in range(k)]
    for b in bufs:
        for name in ("obs", "next_obs"):
            getattr(b, name)[:used] = rng.standard_normal((used, F * N), dtype=np.float32)
        b.pos = used
    for _ in range(20):
        ReplayBuffer.sample_stacked(bufs, 256, rows=(F, N))
    t0 = time.perf_counter()
    for _ in range(n):
        ReplayBuffer.sample_stacked(bufs, 256, rows=(F, N))
    return (time.perf_counter() - t0) / n * 1e3


def _slide_ms(k: int, used: int, n: int = 100, repeats: int = 5) -> dict:
    """In this process: ms per stacked replay sample (rows, batch 256) of k default-shape buffers
    holding `used` transitions of a sliding window (a window of 32 returns of a random series, then
    the book), kept sliding (`window=`) and whole; the two interleaved, the median of `repeats`."""
    import numpy as np
    import torch

    from eqtrade.agents.buffer import ReplayBuffer
    from eqtrade.util import keep_freed_memory

    torch.set_num_threads(1)
    keep_freed_memory()
    W, N = 32, 20
    F = W + 1
    rng = np.random.default_rng(0)
    kinds = {"sliding": [], "whole": []}
    for s in range(k):
        series = rng.standard_normal((used + W, N), dtype=np.float32)
        books = rng.standard_normal((used + 1, N), dtype=np.float32)
        win = np.lib.stride_tricks.sliding_window_view(series, (W, N))[:, 0].reshape(used + 1, W * N)
        obs = np.concatenate([win[:used], books[:used]], axis=1)
        for kind in kinds:
            b = ReplayBuffer(100_000, (F * N,), (N,), seed=s, extra_dim=N, window=(W, N) if kind == "sliding" else None)
            b.obs[:used] = obs
            if kind == "sliding":
                b.next_new[:used] = np.concatenate([series[W : used + W], books[1:]], axis=1)
            else:
                b.next_obs[:used] = np.concatenate([win[1:], books[1:]], axis=1)
            b.pos = used
            kinds[kind].append(b)
    return _interleaved_ms({kind: (lambda bufs=bufs: ReplayBuffer.sample_stacked(bufs, 256, rows=(F, N)))
                            for kind, bufs in kinds.items()}, n, repeats)


def _interleaved_ms(calls: dict, n: int, repeats: int) -> dict:
    """ms per call of each of `calls` (name -> function), timed `repeats` times interleaved
    (each after 10 warm-up calls, n calls a timing): the median per name."""
    out = {name: [] for name in calls}
    for _ in range(repeats):
        for name, f in calls.items():
            for _ in range(10):
                f()
            t0 = time.perf_counter()
            for _ in range(n):
                f()
            out[name].append((time.perf_counter() - t0) / n * 1e3)
    return {name: sorted(v)[len(v) // 2] for name, v in out.items()}


def slide(args) -> None:
    print("ms per stacked replay sample (batch 256, rows) of K default-strategy buffers holding U transitions, "
          "next observations kept sliding (their new rows only) and whole; median of 5 interleaved timings")
    for k in [int(x) for x in args.ks.split(",")]:
        for u in [int(x) for x in args.used.split(",")]:
            ms = _child(f"_slide_ms({k}, {u})")
            print(f"K = {k:>3} U = {u:>6}: sliding {ms['sliding']:6.2f} ms, whole {ms['whole']:6.2f} ms: "
                  f"{ms['whole'] / ms['sliding']:.2f}x", flush=True)


def _adam_ms(k: int, n: int = 200, repeats: int = 5) -> dict:
    """In this process: ms per Adam step over a stack of k default-strategy runs' actor and
    critic parameters (k = 0: one Pendulum 2x256 SAC's), with torch's foreach and fused kernels,
    interleaved; the median of `repeats`."""
    import torch

    torch.set_num_threads(1)
    if k:
        from eqtrade.agents.stack import StackedSAC

        agents, _ = _runs(k, "portfolio", eval_every=0)
        stack = StackedSAC(agents)
        params = stack.critic.param_list() + stack.actor.param_list()
    else:
        agent = _pendulum_agent()
        params = [*agent.critic.parameters(), *agent.actor.parameters()]
    params = [p.detach().clone().requires_grad_(True) for p in params]
    for p in params:
        p.grad = torch.randn_like(p)
    opts = {kind: torch.optim.Adam(params, lr=1e-4, **{kind: True}) for kind in ("foreach", "fused")}
    return _interleaved_ms({kind: opt.step for kind, opt in opts.items()}, n, repeats) | {
        "numbers": sum(p.numel() for p in params)}


def adam_steps(args) -> None:
    print("ms per Adam step, foreach and fused kernels, one thread (K = 0: one Pendulum 2x256 SAC's actor and critics; "
          "K >= 1: a stack of K default-strategy runs'); median of 5 interleaved timings")
    for k in [int(x) for x in args.ks.split(",")]:
        ms = _child(f"_adam_ms({k})")
        print(f"K = {k:>3} ({ms['numbers']} parameters): foreach {ms['foreach']:.3f} ms, fused {ms['fused']:.3f} ms: "
              f"{ms['foreach'] / ms['fused']:.2f}x", flush=True)


def _compiled_ms(k: int, n: int = 30) -> dict:
    """In this process: ms per update of a stack of k default-strategy runs, eager, then with the
    stack's networks' forward wrapped in torch.compile (the first compiled update's seconds too)."""
    import torch

    stack = _ready_stack(k)
    out = {}

    def per_update():
        t0 = time.perf_counter()
        for _ in range(n):
            stack.update()
        return (time.perf_counter() - t0) / n * 1e3

    out["eager"] = min(per_update(), per_update())
    for m in (stack.actor, stack.critic, stack.critic_target):
        m.forward = torch.compile(m.forward, dynamic=False)
    t0 = time.perf_counter()
    for _ in range(6):  # every call signature once (with and without grad, the held book)
        stack.update()
    out["compile_s"] = time.perf_counter() - t0
    out["compiled"] = min(per_update(), per_update())
    return out


def compiled(args) -> None:
    print("ms per update of a stack of K default-strategy runs, eager and with torch.compile on its networks "
          "(one process per K)")
    for k in [int(x) for x in args.ks.split(",")]:
        r = _child(f"_compiled_ms({k})")
        print(f"K = {k:>3}: eager {r['eager']:6.1f} ms, compiled {r['compiled']:6.1f} ms "
              f"({r['eager'] / r['compiled']:.2f}x; compiling took {r['compile_s']:.0f} s)", flush=True)


def sample(args) -> None:
    print("ms per stacked replay sample (batch 256, rows) of K default-strategy buffers holding U transitions, "
          "on transparent huge pages (EQTRADE_HUGEPAGES=1) and on 4 KiB pages (the default), one process each")
    res: dict = {}
    for rep in range(args.repeats):
        for k in [int(x) for x in args.ks.split(",")]:
            for u in [int(x) for x in args.used.split(",")]:
                ms = {}
                for mode, flag in (("huge", "1"), ("4k", "0")):
                    ms[mode] = _child(f"_sample_ms({k}, {u})", EQTRADE_HUGEPAGES=flag)
                res.setdefault((k, u), []).append(ms["4k"] / ms["huge"])
                print(f"repeat {rep + 1} K = {k:>3} U = {u:>6}: huge pages {ms['huge']:6.2f} ms, 4 KiB pages "
                      f"{ms['4k']:6.2f} ms: {ms['4k'] / ms['huge']:.2f}x", flush=True)
    for (k, u), r in res.items():
        print(f"K = {k:>3} U = {u:>6}: huge pages {min(r):.2f}x - {max(r):.2f}x faster over {len(r)} repeats")


def malloc(args) -> None:
    print(f"ms per update of a stack of {args.k} default-strategy runs, one process per measurement")
    res: dict[str, list[float]] = {"kept": [], "returned": []}
    for _ in range(args.repeats):
        for name, flag in (("kept", "1"), ("returned", "0")):
            res[name].append(_child(f"_update_ms({args.k})", EQTRADE_KEEP_FREED_MEMORY=flag))
            print(f"freed memory {name:<8} {res[name][-1]:6.1f} ms", flush=True)
    ratios = sorted(r / k for r, k in zip(res["returned"], res["kept"]))
    print(f"returned / kept: {ratios[0]:.2f}x - {ratios[-1]:.2f}x over {args.repeats} repeats")


def curve(args) -> None:
    ks = [int(x) for x in args.ks.split(",")]
    print(f"{args.env}: steady-state steps/s of two processes (one per core), each a stack of K runs, "
          f"over {args.window} steps after learning starts, evaluations included")
    for k in ks:
        with ThreadPoolExecutor(2) as pool:
            res = list(pool.map(lambda _: _spawn(k, args.window, None, args.env), range(2)))
        total = sum(r["steps_per_s"] for r in res)
        print(f"K = {k:>3} per process ({2 * k} runs): {total:7.0f} steps/s on 2 cores "
              f"({total / (2 * k):.0f} per run, window {res[0]['window']} steps)", flush=True)


def gpu(args) -> None:
    """Steady-state steps/s of one stack of K runs on the GPU (one process: the GPU is the
    shared resource), each K in its own process; refused where torch sees no CUDA device."""
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("bench_stack.py gpu: torch sees no CUDA device here (run it on a GPU machine)")
    ks = [int(x) for x in args.ks.split(",")]
    print(f"{args.env} on {torch.cuda.get_device_name(0)}: steady-state steps/s of one process training a stack of "
          f"K runs with --device cuda, over {args.window} steps after learning starts, evaluations included")
    for k in ks:
        r = _child(f"_worker({k}, {args.window}, None, {args.env!r}, 'cuda')", failed=f"stack of {k} failed:\n")
        print(f"K = {k:>4}: {r['steps_per_s']:8.0f} steps/s ({r['steps_per_s'] / k:.0f} per run, window "
              f"{r['window']} steps)", flush=True)


def memory(args) -> None:
    ks = [int(x) for x in args.ks.split(",")]
    print(f"{args.env}: peak resident memory of one process training a stack of K runs for {args.steps} steps")
    base = None
    for k in ks:
        r = _spawn(k, 0, args.steps, args.env)
        base = base or r
        rest, rest0 = r["rss_mb"] - r["replay_mb"], base["rss_mb"] - base["replay_mb"]
        print(f"K = {k:>3}: peak RSS {r['rss_mb']:7.0f} MB, replay memory filled {r['replay_mb']:6.0f} MB, "
              f"the rest {rest:5.0f} MB ({rest - rest0:+.0f} MB against K = {ks[0]})", flush=True)


def _median_us(f, n: int = 100) -> float:
    import statistics

    for _ in range(5):
        f()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e6


def gemm(args) -> None:
    import torch
    import torch.nn.functional as F

    from eqtrade.nn import gemm as g

    if not g.onednn_enabled():
        raise SystemExit("oneDNN's linear op is not usable in this torch build (or EQTRADE_ONEDNN=0): nothing to compare")
    lp = torch.ops.mkldnn._linear_pointwise
    # (rows, in, out) of x [rows, in] @ w.T [in, out]; what: where the networks compute it
    # layout: "w" the weight [out, in] as nn.Linear keeps it; "wT" a transposed view (the twin
    # critics' [in, out] weights, an input gradient gy @ w); "both" both operands transposed views
    # (a weight gradient gy.T @ x)
    shapes = [((256, 256, 256), "w", "2x256 hidden layer, nn.Linear's weight (actor forward)"),
              ((256, 256, 256), "wT", "2x256 hidden layer, transposed weight (critics' forward, input gradient)"),
              ((256, 256, 256), "both", "2x256 hidden layer, weight gradient (both operands transposed)"),
              ((256, 5, 256), "w", "dm_control cartpole first layer (obs 5)"),
              ((256, 256, 1), "w", "a critic's last layer"),
              ((5120, 33, 8), "w", "a per-asset first layer as rows (the head computes it feature-major)"),
              ((256, 1024, 1024), "w", "DrQ-v2's 1024-wide head layer"),
              ((256, 39200, 50), "w", "DrQ-v2's trunk")]
    for th in [int(t) for t in args.threads.split(",")]:
        torch.set_num_threads(th)
        print(f"{th} thread(s): microseconds per product (median of 100), torch F.linear against oneDNN")
        for (m, k, n), layout, what in shapes:
            x = torch.randn(k, m).t() if layout == "both" else torch.randn(m, k)
            w = torch.randn(k, n).t() if layout in ("wT", "both") else torch.randn(n, k)
            a = _median_us(lambda: F.linear(x, w))
            b = _median_us(lambda: lp(x, w, None, "none", [], ""))
            flops = 2 * m * k * n
            print(f"  [{m}, {k}] x [{k}, {n}] {what:<72} {a:8.1f} {b:8.1f}  {a / b:5.2f}x  "
                  f"({flops / a / 1e3:5.1f} / {flops / b / 1e3:5.1f} GFLOP/s){'  used' if m * k * n >= g.MIN_MACS else ''}")
    agent = _pendulum_agent()
    for th in [int(t) for t in args.threads.split(",")]:
        torch.set_num_threads(th)
        ms = {False: [], True: []}
        for _ in range(args.repeats):
            for flag in (False, True):
                g.use_onednn(flag)
                for _ in range(5):
                    agent.update()
                t = time.perf_counter()
                for _ in range(50):
                    agent.update()
                ms[flag].append((time.perf_counter() - t) / 50 * 1e3)
        g.use_onednn(True)
        ratios = sorted(a / b for a, b in zip(ms[False], ms[True]))
        print(f"Pendulum SAC update (plain 2x256, batch 256), {th} thread(s), {args.repeats} interleaved repeats: "
              f"torch {min(ms[False]):.2f}-{max(ms[False]):.2f} ms, oneDNN {min(ms[True]):.2f}-{max(ms[True]):.2f} ms: "
              f"{ratios[0]:.2f}-{ratios[-1]:.2f}x faster")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    a = sub.add_parser("anchor")
    a.add_argument("--seeds", type=int, default=10)
    a.add_argument("--steps", type=int, default=4000)
    a.add_argument("--repeats", type=int, default=3)
    c = sub.add_parser("curve")
    c.add_argument("--ks", default="1,5,15,50")
    c.add_argument("--window", type=int, default=1000)
    gp = sub.add_parser("gpu", help="steps/s of one stack of K runs on a CUDA device")
    gp.add_argument("--ks", default="1,16,256")
    gp.add_argument("--window", type=int, default=1000)
    m = sub.add_parser("memory")
    m.add_argument("--ks", default="1,5,20")
    m.add_argument("--steps", type=int, default=3000)
    g = sub.add_parser("malloc")
    g.add_argument("--k", type=int, default=5)
    g.add_argument("--repeats", type=int, default=3)
    u = sub.add_parser("update")
    u.add_argument("--ks", default="1,5,15")
    u.add_argument("--against", default="HEAD", help="the git commit to compare with (default HEAD)")
    u.add_argument("--repeats", type=int, default=3)
    u.add_argument("--family", default="", choices=["", "plain", "exact", "relaxed"],
                   help="the default strategy with this [agent] family (default: the strategy's, relaxed)")
    sp = sub.add_parser("sample", help="ms per stacked replay sample on huge pages and on 4 KiB pages")
    sp.add_argument("--ks", default="5,15")
    sp.add_argument("--used", default="2000,30000")
    sp.add_argument("--repeats", type=int, default=3)
    sl = sub.add_parser("slide", help="ms per stacked replay sample, next observations kept sliding and whole")
    sl.add_argument("--ks", default="1,5,15")
    sl.add_argument("--used", default="2000,30000")
    ad = sub.add_parser("adam", help="ms per Adam step, foreach against fused")
    ad.add_argument("--ks", default="0,1,15")
    cp = sub.add_parser("compile", help="ms per update eager and with torch.compile on the stack's networks")
    cp.add_argument("--ks", default="1,15")
    f = sub.add_parser("profile", help="where an update's time goes: FLOPs, the rate achieved, the top ops")
    f.add_argument("--ks", default="1,5,15")
    f.add_argument("--updates", type=int, default=50)
    pt = sub.add_parser("parts", help="ms per part of one stacked update (each part's own time)")
    pt.add_argument("--ks", default="1,5,15")
    pt.add_argument("--family", default="", choices=["", "plain", "exact", "relaxed"])
    bt = sub.add_parser("batch", help="ms per update against the replay batch size: the fixed part and the data part")
    bt.add_argument("--ks", default="1,5,15")
    bt.add_argument("--batches", default="8,64,256")
    bt.add_argument("--repeats", type=int, default=3)
    gm = sub.add_parser("gemm", help="oneDNN's matrix products against torch's, and the Pendulum update with each")
    gm.add_argument("--threads", default="1,2")
    gm.add_argument("--repeats", type=int, default=3)
    h = sub.add_parser("phases", help="the share of a stack's steady-state step in each phase")
    h.add_argument("--ks", default="15")
    h.add_argument("--window", type=int, default=1000)
    for p in (a, c, gp, m, h):
        p.add_argument("--env", default="portfolio", help="portfolio (the default strategy) or dmc/DOMAIN-TASK")
    args = ap.parse_args(argv)
    {"anchor": anchor, "curve": curve, "gpu": gpu, "memory": memory, "malloc": malloc, "update": update, "sample": sample, "slide": slide, "adam": adam_steps, "compile": compiled,
     "profile": profile, "phases": phases, "parts": parts, "batch": batch, "gemm": gemm}[args.what](args)


if __name__ == "__main__":
    main()
