"""SAC training speed: environment steps per second with one gradient update per step
(batch 256, 2x256 hidden), eqtrade SAC plain / exact / relaxed against Stable-Baselines3 SAC
(MlpPolicy, same sizes) on the same env, in the same run.

Run: make bench-deps && .venv/bin/python bench/bench_agents.py [--env Pendulum-v1] [--steps 600]
Each configuration is timed twice, interleaved, after its warm-up; the better of the two counts.
Targets (issue 5): plain >= 1.0x SB3, relaxed >= 0.5x, exact >= 0.4x.
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
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    configs = [("Stable-Baselines3 SAC", lambda: time_sb3(args.env, args.warm, args.steps, 0))]
    configs += [(f"eqtrade SAC {f}", (lambda f=f: time_ours(args.env, f, args.warm, args.steps, 0)))
                for f in ("plain", "relaxed", "exact")]
    best = {name: 0.0 for name, _ in configs}
    for _ in range(2):
        for name, fn in configs:
            best[name] = max(best[name], fn())
    base = best["Stable-Baselines3 SAC"]
    print(f"SAC steps/s with one update per step, batch 256, 2x256 hidden, {args.env}, "
          f"{args.threads} threads, torch {torch.__version__}")
    print(f"{'agent':<26} {'steps/s':>9} {'x SB3':>7}")
    for name, _ in configs:
        print(f"{name:<26} {best[name]:>9.1f} {best[name] / base:>7.2f}")


if __name__ == "__main__":
    main()
