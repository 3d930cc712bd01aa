"""SAC training speed: environment steps per second with one gradient update per step
(batch 256, 2x256 hidden), eqtrade SAC plain / exact / relaxed against Stable-Baselines3 SAC
(MlpPolicy, same sizes) on the same env, in the same run.

Run: make bench-deps && .venv/bin/python bench/bench_agents.py [--env Pendulum-v1] [--steps 600] [--repeats 3]
Each configuration is timed --repeats times, interleaved (SB3, plain, relaxed, exact, SB3, ...),
after its warm-up; each repeat's ratio is against SB3's time in the same repeat, and the range
of the ratios over the repeats is printed (the minimum is the number the targets are read on).
Targets (the many-runs issue): plain >= 1.5x SB3, relaxed and exact >= 0.7x.
"""

from __future__ import annotations

import argparse
import time
import warnings

import gymnasium as gym
import torch

warnings.filterwarnings("ignore")


def time_sb3(env_id: str, warm: int, steps: int, seed: int) -> float:
    from stable_baselines3 import SAC as SB3SAC

    m = SB3SAC("MlpPolicy", gym.make(env_id), learning_starts=warm, batch_size=256, train_freq=1, gradient_steps=1,
               policy_kwargs=dict(net_arch=[256, 256]), seed=seed, verbose=0)
    m.learn(warm + 10)
    t = time.perf_counter()
    m.learn(steps, reset_num_timesteps=False)
    return steps / (time.perf_counter() - t)


def time_ours(env_id: str, family: str, warm: int, steps: int, seed: int) -> float:
    from eqtrade.agents import SAC, EnvSpec, SACConfig

    spec = EnvSpec(env_id)
    agent = SAC(spec.make(), SACConfig(family=family, learning_starts=warm, eval_every=0, checkpoint_every=0,
                                       hidden=(256, 256), batch_size=256, seed=seed), spec)
    agent.learn(warm + 10, progress=False)
    t = time.perf_counter()
    agent.learn(warm + 10 + steps, progress=False)
    return steps / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--env", default="Pendulum-v1")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--warm", type=int, default=300)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    configs = [("Stable-Baselines3 SAC", lambda: time_sb3(args.env, args.warm, args.steps, 0))]
    configs += [(f"eqtrade SAC {f}", (lambda f=f: time_ours(args.env, f, args.warm, args.steps, 0)))
                for f in ("plain", "relaxed", "exact")]
    rates = {name: [] for name, _ in configs}
    for _ in range(max(1, args.repeats)):
        for name, fn in configs:
            rates[name].append(fn())
    base = rates["Stable-Baselines3 SAC"]
    print(f"SAC steps/s with one update per step, batch 256, 2x256 hidden, {args.env}, "
          f"{args.threads} threads, torch {torch.__version__}, {len(base)} interleaved repeats")
    print(f"{'agent':<26} {'steps/s (range)':>17} {'x SB3 min - max':>16}")
    for name, _ in configs:
        r = rates[name]
        x = [a / b for a, b in zip(r, base)]
        print(f"{name:<26} {min(r):>7.1f} - {max(r):>7.1f} {min(x):>7.2f} - {max(x):<6.2f}")


if __name__ == "__main__":
    main()
