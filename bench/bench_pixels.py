"""Pixel dm_control on this CPU: env steps per second (one 84x84 frame rendered per step, MuJoCo
headless through EGL) and DrQ-v2 updates per second with the reference network sizes (batch 256,
32-channel encoder, 1024-wide MLPs) for the plain, exact and relaxed families with each encoder
(lift: the reference CNN shared over the mirror; group: group convolutions; steerable: escnn's
steerable convolutions; 32/sqrt|G| = 23 channels per field, about the reference's parameters), in
the same run, the plain family the anchor; one torch thread.

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
    variants = [("plain", "cnn")] + [(f, k) for k in ("lift", "group", "steerable") for f in ("exact", "relaxed")]
    for family, kind in variants:
        torch.manual_seed(0)
        agent = DrQV2(env, DrQConfig(family=family, batch_size=args.batch, buffer_size=600, learning_starts=10**9,
                                     eval_every=0, checkpoint_every=0, encoder={"kind": kind}, device="cpu"),
                      spec, env)
        agent.learn(args.batch + 10, progress=False)  # fill the buffer with random-action frames
        agent.update()  # warm-up
        t = time.perf_counter()
        for _ in range(args.updates):
            agent.update()
        upd = (time.perf_counter() - t) / args.updates
        enc = sum(p.numel() for p in agent.encoder.parameters())
        params = sum(p.numel() for m in (agent.encoder, agent.actor, agent.critic) for p in m.parameters())
        rows[f"{family}/{kind}"] = (upd, params, enc)
    print(f"torch {torch.__version__}, one thread; env step (render 84x84, action repeat 8): {step_ms:.1f} ms "
          f"({1e3 / step_ms:.0f}/s)")
    print(f"| family/encoder | parameters | of which encoder | DrQ-v2 update, batch {args.batch} (s) | updates/s "
          "| x plain |")
    print("| --- | --- | --- | --- | --- | --- |")
    base = rows["plain/cnn"][0]
    for name, (upd, params, enc) in rows.items():
        print(f"| {name} | {params:,} | {enc:,} | {upd:.2f} | {1 / upd:.2f} | {upd / base:.2f} |")
    upd = base
    frames_per_hour = 3600 / (step_ms / 1e3 + upd / 2) * 8  # one update every 2 env steps, action repeat 8
    print(f"=> plain: about {frames_per_hour / 1e3:.0f}k cartpole frames per hour of one core (update every 2 steps)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
