"""Pixel dm_control on this CPU: env steps per second (one 84x84 frame rendered per step, MuJoCo
headless through EGL) and DrQ-v2 updates per second with the reference network sizes (batch 256,
32-channel encoder, 1024-wide MLPs) for the plain, exact and relaxed families, in the same run;
one torch thread.

    .venv/bin/python bench/bench_pixels.py [--updates 5]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--updates", type=int, default=5)
    ap.add_argument("--batch", type=int, default=256)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    from eqtrade.agents import DrQConfig, DrQV2, EnvSpec

    spec = EnvSpec("dmc-pixels/cartpole-swingup", {})
    env = spec.make()
    env.reset(seed=0)
    t = time.perf_counter()
    n = 0
    while n < 100:
        _, _, term, trunc, _ = env.step(env.action_space.sample())
        n += 1
        if term or trunc:
            env.reset()
    step_ms = (time.perf_counter() - t) / n * 1e3
    rows = {}
    for family in ("plain", "exact", "relaxed"):
        torch.manual_seed(0)
        agent = DrQV2(env, DrQConfig(family=family, batch_size=args.batch, buffer_size=600, learning_starts=10**9,
                                     eval_every=0, checkpoint_every=0), spec, env)
        agent.learn(args.batch + 10, progress=False)  # fill the buffer with random-action frames
        agent.update()  # warm-up
        t = time.perf_counter()
        for _ in range(args.updates):
            agent.update()
        upd = (time.perf_counter() - t) / args.updates
        params = sum(p.numel() for m in (agent.encoder, agent.actor, agent.critic) for p in m.parameters())
        rows[family] = (upd, params)
    print(f"torch {torch.__version__}, one thread; env step (render 84x84, action repeat 8): {step_ms:.1f} ms "
          f"({1e3 / step_ms:.0f}/s)")
    print(f"| family | parameters | DrQ-v2 update, batch {args.batch} (s) | updates/s | x plain |")
    print("| --- | --- | --- | --- | --- |")
    for family, (upd, params) in rows.items():
        print(f"| {family} | {params:,} | {upd:.2f} | {1 / upd:.2f} | {upd / rows['plain'][0]:.2f} |")
    upd = rows["plain"][0]
    frames_per_hour = 3600 / (step_ms / 1e3 + upd / 2) * 8  # one update every 2 env steps, action repeat 8
    print(f"=> plain: about {frames_per_hour / 1e3:.0f}k cartpole frames per hour of one core (update every 2 steps)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
