"""Pixel dm_control on this CPU: env steps per second (one 84x84 frame rendered per step, MuJoCo
headless through EGL) and DrQ-v2 updates per second with the reference network sizes (batch 256,
32-channel encoder, 1024-wide MLPs) for the plain, exact and relaxed families with each encoder
(lift: the reference CNN shared over the mirror; group: group convolutions; steerable: escnn's
steerable convolutions; 32/sqrt|G| = 23 channels per field, about the reference's parameters), in
the same run, the plain family the anchor; one torch thread.

    .venv/bin/python bench/bench_pixels.py [--updates 5]
    .venv/bin/python bench/bench_pixels.py --replay [--steps 300]
    .venv/bin/python bench/bench_pixels.py --kernels [--updates 5] [--repeats 3]

--kernels: the plain agent's update with oneDNN's products (eqtrade.nn.gemm, the default) and with
torch's (`gemm.use_onednn(False)`), interleaved in one process over --repeats.
--replay: DrQ-v2's replay of the stacked frames instead: a plain agent's buffer filled by --steps
random-action env steps, whether it kept sliding (each next observation's new frame only), the
bytes per transition it keeps and would keep whole, at the default buffer_size, and the size and
write time of the checkpoint (Agent.save) with the replay sliding, then the same contents whole.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--updates", type=int, default=5)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--replay", action="store_true", help="the replay's memory and checkpoint, sliding and whole")
    ap.add_argument("--steps", type=int, default=300, help="--replay: env steps stored")
    ap.add_argument("--kernels", action="store_true",
                    help="the plain agent's update with oneDNN's products (eqtrade.nn.gemm) and with torch's, interleaved")
    ap.add_argument("--repeats", type=int, default=3, help="--kernels: interleaved repeats")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    if args.replay:
        return replay(args.steps)
    if args.kernels:
        return kernels(args.batch, args.updates, args.repeats)
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


def kernels(batch: int, updates: int, repeats: int) -> int:
    """s per plain DrQ-v2 update (reference sizes) with oneDNN's products and with torch's, in one
    process, interleaved over the repeats."""
    from eqtrade.agents import DrQConfig, DrQV2, EnvSpec
    from eqtrade.nn import gemm

    spec = EnvSpec("dmc-pixels/cartpole-swingup", {})
    env = spec.make()
    torch.manual_seed(0)
    agent = DrQV2(env, DrQConfig(family="plain", batch_size=batch, buffer_size=600, learning_starts=10**9,
                                 eval_every=0, checkpoint_every=0, device="cpu"), spec, env)
    agent.learn(batch + 10, progress=False)
    s = {False: [], True: []}
    for _ in range(repeats):
        for flag in (False, True):
            gemm.use_onednn(flag)
            agent.update()
            t = time.perf_counter()
            for _ in range(updates):
                agent.update()
            s[flag].append((time.perf_counter() - t) / updates)
    gemm.use_onednn(True)
    ratios = sorted(a / b for a, b in zip(s[False], s[True]))
    print(f"plain DrQ-v2 update, batch {batch}, one thread, {repeats} interleaved repeats of {updates}: torch's products "
          f"{min(s[False]):.3f}-{max(s[False]):.3f} s, oneDNN's {min(s[True]):.3f}-{max(s[True]):.3f} s: "
          f"{ratios[0]:.2f}-{ratios[-1]:.2f}x faster")
    return 0


def replay(steps: int) -> int:
    import tempfile
    from pathlib import Path

    from eqtrade.agents import DrQConfig, DrQV2, EnvSpec

    spec = EnvSpec("dmc-pixels/cartpole-swingup", {})
    env = spec.make()
    cfg = DrQConfig(family="plain", learning_starts=10**9, eval_every=0, checkpoint_every=0, device="cpu")
    agent = DrQV2(env, cfg, spec, env)
    agent.learn(steps, progress=False)  # random-action frames, as a run's first steps
    b = agent.buffer
    per = lambda: sum(a.itemsize * a[0].size for a in (b.obs, b.next_obs, b.next_new, b.actions)  # noqa: E731
                      if a is not None)
    rows, slid = [], b.slides
    with tempfile.TemporaryDirectory() as d:
        for layout in ("sliding", "whole"):
            if layout == "whole":
                if not slid:
                    break
                b._store_whole()  # the same transitions, next observations stored whole
            t = time.perf_counter()
            agent.save(Path(d) / f"{layout}.pt")
            secs = time.perf_counter() - t
            mb = (Path(d) / f"{layout}.pt").stat().st_size / 2**20
            rows.append((layout, per(), mb, secs))
    print(f"DrQ-v2 replay, {env.observation_space.shape} uint8 frames, {len(b)} transitions from random actions; "
          f"the stack kept sliding: {slid}")
    for layout, nbytes, mb, secs in rows:
        print(f"{layout:>7}: {nbytes:,} bytes per transition ({nbytes * cfg.buffer_size / 2**30:.2f} GiB at the default "
              f"buffer_size of {cfg.buffer_size:,}); checkpoint with {len(b)} transitions {mb:.1f} MiB, written in "
              f"{secs:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
