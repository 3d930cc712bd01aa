"""Cost per step against the number of assets N: env step, network forward+backward and SAC update,
for the per-asset shared networks (the default; with the market-mean context, "+mean"; with relaxed
per-asset embeddings, "relaxed+mean") and the flat MLP, at N = 20, 100, 500.

The universe is the planted market (eqtrade.data.synthetic: N independent synthetic assets,
1999-2022 business days) — a documented synthetic universe of any size; costs do not depend on
the prices. Prints milliseconds per call and the exponent b of a fitted cost ~ N^b per column
(1 = linear). Both families are timed in the same process run, one thread.

    .venv/bin/python bench/bench_scale.py [--sizes 20,100,500] [--reps 20]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch


def _time(fn, reps: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(reps):
            fn()
        best = min(best, (time.perf_counter() - t) / reps)
    return best * 1e3


def measure(n: int, reps: int) -> dict[str, float]:
    from eqtrade.agents import SAC, EnvSpec, SACConfig
    from eqtrade.data.synthetic import planted_market

    prices = planted_market(n, seed=0)
    spec = EnvSpec("portfolio", dict(prices=prices, window=32, split="train", episode_length=252),
                   dict(split="valid", full_period=True))
    env = spec.make()
    rng = np.random.default_rng(0)
    env.reset(seed=0)

    def step():
        _, _, term, trunc, _ = env.step(rng.uniform(-1, 1, n))
        if term or trunc:
            env.reset()

    out = {"env step": _time(step, reps * 10)}
    common = dict(family="plain", learning_starts=64, batch_size=256, buffer_size=2000, eval_every=0,
                  checkpoint_every=0, seed=0)
    shared = dict(hidden=(4,), actor_loss="exact", reward_scale=100.0, **common)
    agents = {
        "per-asset": SAC(spec.make(), SACConfig(encoder={"kind": "per_asset"}, **shared), spec, env),
        "+mean": SAC(spec.make(), SACConfig(encoder={"kind": "per_asset", "context": "mean"}, **shared), spec, env),
        "relaxed+mean": SAC(spec.make(), SACConfig(encoder={"kind": "per_asset", "context": "mean",
                                                            "assets": "relaxed"}, **shared), spec, env),
        "flat": SAC(spec.make(), SACConfig(hidden=(256, 256), **common), spec, env),
    }
    obs = torch.randn(256, env.observation_space.shape[0])
    for name, agent in agents.items():
        def fwd_bwd(a=agent):
            mean, log_std = a.actor(obs)
            (mean.square().mean() + log_std.mean()).backward()

        out[f"{name} actor fwd+bwd"] = _time(fwd_bwd, reps)
        agent.learn(300, progress=False)  # fill the buffer; updates start after 64 steps
        out[f"{name} SAC update"] = _time(agent.update, reps)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="20,100,500")
    ap.add_argument("--reps", type=int, default=20)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = {n: measure(n, args.reps) for n in sizes}
    cols = list(rows[sizes[0]])
    print(f"ms per call, one thread, torch {torch.__version__}; window 32; per-asset head of width 4, flat 2x256")
    print("| N | " + " | ".join(cols) + " |")
    print("| --- | " + " | ".join("---" for _ in cols) + " |")
    for n in sizes:
        print(f"| {n} | " + " | ".join(f"{rows[n][c]:.3g}" for c in cols) + " |")
    logn = np.log(sizes)
    exps = [np.polyfit(logn, np.log([rows[n][c] for n in sizes]), 1)[0] for c in cols]
    print("| exponent b (cost ~ N^b) | " + " | ".join(f"{b:.2f}" for b in exps) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
