"""Learning checks of the agents on gymnasium's reflection-symmetric control tasks, the three
network families side by side (issue 5):

- SAC on Pendulum-v1, 20k steps (target for plain: average return above -200);
- double DQN on CartPole-v1, 50k steps (target for plain: 475).

Run one task/family:  .venv/bin/python bench/bench_learning.py --task pendulum --family plain
All (long; several in parallel is fine on 2 cores): --task all --family all
Prints, per run, the final evaluation return (mean over 10 deterministic episodes) and the best
evaluation during training, and writes runs/bench-learning/<task>-<family>-s<seed>/.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")

TASKS = {
    "pendulum": dict(algo="sac", env="Pendulum-v1", steps=20_000,
                     agent=dict(hidden=[256, 256], learning_starts=1000, eval_every=2000, eval_episodes=5,
                                checkpoint_every=0, reg_coef=1e-3)),
    "cartpole": dict(algo="dqn", env="CartPole-v1", steps=50_000,
                     agent=dict(hidden=[256, 256], lr=2.3e-3, batch_size=64, buffer_size=100_000,
                                learning_starts=1000, train_freq=256, gradient_steps=128,
                                target_update_interval=128, exploration_steps=8000, eps_end=0.04,
                                eval_every=5000, eval_episodes=5, checkpoint_every=0, reg_coef=1e-3)),
}


def run(task: str, family: str, seed: int = 0, out_root: Path = Path("runs/bench-learning"), progress=False):
    """Train one task with one family; returns (final eval return, best eval return, seconds)."""
    from eqtrade.run import train

    spec = TASKS[task]
    cfg = {"run": {"algo": spec["algo"], "env": spec["env"], "steps": spec["steps"]}, "env": {}, "eval_env": {},
           "agent": dict(spec["agent"], family=family, seed=seed)}
    out = out_root / f"{task}-{family}-s{seed}"
    if (out / "checkpoint.pt").exists():
        (out / "checkpoint.pt").unlink()
        (out / "metrics.csv").unlink(missing_ok=True)
    t = time.time()
    agent, _ = train(cfg, out=out, progress=progress)
    final = agent.evaluate(episodes=10)
    evals = [m["eval_return"] for m in agent.metrics if "eval_return" in m]
    return final, max(evals), time.time() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", choices=[*TASKS, "all"], default="all")
    ap.add_argument("--family", choices=["plain", "exact", "relaxed", "all"], default="all")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    tasks = list(TASKS) if args.task == "all" else [args.task]
    fams = ["plain", "exact", "relaxed"] if args.family == "all" else [args.family]
    print(f"{'task':<10} {'family':<8} {'seed':>4} {'final eval':>11} {'best eval':>10} {'seconds':>8}")
    for task in tasks:
        for fam in fams:
            final, best, sec = run(task, fam, args.seed)
            print(f"{task:<10} {fam:<8} {args.seed:>4} {final:>11.1f} {best:>10.1f} {sec:>8.0f}", flush=True)


if __name__ == "__main__":
    main()
