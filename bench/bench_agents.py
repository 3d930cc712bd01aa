"""SAC training speed: environment steps per second with one gradient update per step
(batch 256, 2x256 hidden), eqtrade SAC plain / exact / relaxed against Stable-Baselines3 SAC
(MlpPolicy, same sizes) on the same env, in the same run.

Run: make bench-deps && .venv/bin/python bench/bench_agents.py [--env Pendulum-v1] [--steps 600] [--repeats 3] [--chunks 6]
Each repeat builds the four agents afresh (seed = the repeat's number) and takes each past its
warm-up; then the agents train in turns (SB3, plain, relaxed, exact, SB3, ...) of --steps/--chunks
steps each until each has trained --steps, so that a change in the machine's speed (this shared
machine's rates move 1.3-1.6x within minutes) falls on all four alike rather than on whichever ran
at that moment. Each repeat's ratio is against SB3's time in the same repeat, and the range of the
ratios over the repeats is printed (the minimum is the number the targets are read on);
--chunks 1 trains each agent's steps in one block, close to the protocol before 2026-12-08 (which
built, warmed and timed one agent after the other, each with seed 0).
Targets (the many-runs issue): plain >= 1.5x SB3, relaxed and exact >= 0.7x.
"""

from __future__ import annotations

import argparse
import time
import warnings

import gymnasium as gym
import torch

warnings.filterwarnings("ignore")


class _SB3:
    """Stable-Baselines3's SAC (MlpPolicy, 2x256, batch 256, one update per step) past its warm-up."""

    def __init__(self, env_id: str, warm: int, seed: int):
        from stable_baselines3 import SAC as SB3SAC

        self.m = SB3SAC("MlpPolicy", gym.make(env_id), learning_starts=warm, batch_size=256, train_freq=1,
                        gradient_steps=1, policy_kwargs=dict(net_arch=[256, 256]), seed=seed, verbose=0)
        self.m.learn(warm + 10)

    def train(self, steps: int) -> None:
        self.m.learn(steps, reset_num_timesteps=False)


class _Ours:
    """eqtrade's SAC of one family with the same sizes, past its warm-up."""

    def __init__(self, env_id: str, family: str, warm: int, seed: int):
        from eqtrade.agents import SAC, EnvSpec, SACConfig

        spec = EnvSpec(env_id)
        self.agent = SAC(spec.make(), SACConfig(family=family, learning_starts=warm, eval_every=0, checkpoint_every=0,
                                                hidden=(256, 256), batch_size=256, seed=seed), spec)
        self.agent.learn(warm + 10, progress=False)

    def train(self, steps: int) -> None:
        self.agent.learn(self.agent.step + steps, progress=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--env", default="Pendulum-v1")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--warm", type=int, default=300)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--chunks", type=int, default=6,
                    help="each repeat's --steps trained in this many chunks per agent, the agents taking turns")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    names = ["Stable-Baselines3 SAC"] + [f"eqtrade SAC {f}" for f in ("plain", "relaxed", "exact")]
    rates = {name: [] for name in names}
    chunk = max(1, args.steps // max(1, args.chunks))
    for rep in range(max(1, args.repeats)):
        learners = [_SB3(args.env, args.warm, rep)] + [_Ours(args.env, f, args.warm, rep)
                                                         for f in ("plain", "relaxed", "exact")]
        spent = [0.0] * len(learners)
        for _ in range(max(1, args.chunks)):
            for i, learner in enumerate(learners):
                t = time.perf_counter()
                learner.train(chunk)
                spent[i] += time.perf_counter() - t
        for name, s in zip(names, spent):
            rates[name].append(chunk * max(1, args.chunks) / s)
    base = rates[names[0]]
    print(f"SAC steps/s with one update per step, batch 256, 2x256 hidden, {args.env}, "
          f"{args.threads} threads, torch {torch.__version__}, {len(base)} repeats of {chunk * max(1, args.chunks)} steps "
          f"per agent in {max(1, args.chunks)} interleaved chunks")
    print(f"{'agent':<26} {'steps/s (range)':>17} {'x SB3 min - max':>16}")
    for name in names:
        r = rates[name]
        x = [a / b for a, b in zip(r, base)]
        print(f"{name:<26} {min(r):>7.1f} - {max(r):>7.1f} {min(x):>7.2f} - {max(x):<6.2f}")


if __name__ == "__main__":
    main()
