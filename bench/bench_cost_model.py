"""Training speed of the portfolio SAC under the one cost model: the broker's drift model with
the training turnover penalty (today's default) against the old training env (the "target"
model at 50 bps), in the same run, interleaved, each timed twice after its warm-up.

    .venv/bin/python bench/bench_cost_model.py [--steps 1500] [--warm 1000]

Prints env steps/s (one gradient update per step, strategies/sac-plain.toml's networks) and the
ratio new / old: the drift bookkeeping and the penalty are a few numpy operations per step.
"""

from __future__ import annotations

import argparse
import time

import torch


def steps_per_s(env_kw: dict, warm: int, steps: int, seed: int = 0) -> float:
    from eqtrade.run import build_agent, resolve_config

    cfg = resolve_config("strategies/sac-plain.toml", seed=seed)
    cfg["env"].update(env_kw)
    cfg["agent"].update(learning_starts=warm, eval_every=0, checkpoint_every=0)
    agent = build_agent(cfg)
    agent.learn(warm + 10, progress=False)
    t = time.perf_counter()
    agent.learn(warm + 10 + steps, progress=False)
    return steps / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--warm", type=int, default=1000)
    args = ap.parse_args()
    torch.set_num_threads(1)
    variants = {"old: target model, 50 bps": dict(cost_model="target", cost_bps=50.0, turnover_penalty_bps=0.0),
                "new: drift model, 10 bps + 40 bps penalty": dict(cost_model="drift", cost_bps=10.0,
                                                                  turnover_penalty_bps=40.0)}
    best = {k: 0.0 for k in variants}
    for _ in range(2):  # interleaved: a busy moment hits both
        for name, kw in variants.items():
            best[name] = max(best[name], steps_per_s(kw, args.warm, args.steps))
    for name, v in best.items():
        print(f"{name:45s} {v:7.1f} steps/s")
    old, new = best.values()
    print(f"ratio new / old: {new / old:.3f}")


if __name__ == "__main__":
    main()
