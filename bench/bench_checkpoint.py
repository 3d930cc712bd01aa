"""How long a training checkpoint takes to write, its replay buffer as tensors (the format now)
against the same state with the replay as numpy arrays (the format before), in this process.

    .venv/bin/python bench/bench_checkpoint.py [--used 2000,16000,30000] [--repeats 3]

The default strategy's SAC (20 stocks, window 32) with its replay holding U random transitions
(a 30 000-step run holds 30 000 at its end; the replay keeps of each next observation only
its new rows, the window of returns sliding by a day per step); each `Agent.save` (checkpoint.pt,
replay included, written atomically and fsynced) is timed, both ways interleaved over the repeats.
A run checkpoints every `checkpoint_every` steps (2 000 by default), so a 30 000-step run writes
15 checkpoints of a growing replay, and the runs of a stack write theirs one after another.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

STRATEGY = "strategies/sac-relaxed.toml"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--used", default="2000,16000,30000", help="transitions stored in the replay")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)

    import torch

    from eqtrade.agents.buffer import ReplayBuffer
    from eqtrade.run import build_agent, resolve_config

    torch.set_num_threads(1)
    cfg = resolve_config(STRATEGY)
    cfg["agent"].update(checkpoint_every=0, eval_every=0)
    agent = build_agent(cfg)
    b = agent.buffer
    rng = np.random.default_rng(0)
    tensors = ReplayBuffer.state_dict

    def as_numpy(self):  # the format before: the same contents as numpy arrays (pickled by torch.save)
        return {k: v.numpy() if isinstance(v, torch.Tensor) else v for k, v in tensors(self).items()}

    print(f"{STRATEGY}: seconds per checkpoint (Agent.save, replay included)")
    with tempfile.TemporaryDirectory() as d:
        for used in [int(x) for x in args.used.split(",")]:
            for name in ("obs", "next_obs", "next_new", "actions", "rewards", "extras"):
                a = getattr(b, name)  # the replay keeps whole next observations or (sliding) their new part
                if a is not None:
                    a[:used] = rng.standard_normal(a[:used].shape).astype(a.dtype)
            b.pos, b.full = used, False
            res = {"tensors": [], "numpy": []}
            for _ in range(args.repeats):
                for way, fn in (("tensors", tensors), ("numpy", as_numpy)):
                    ReplayBuffer.state_dict = fn
                    try:
                        t = time.perf_counter()
                        agent.save(Path(d) / f"{way}.pt")
                        res[way].append(time.perf_counter() - t)
                    finally:
                        ReplayBuffer.state_dict = tensors
            mb = (Path(d) / "tensors.pt").stat().st_size / 1e6
            ratio = sorted(n / t for t, n in zip(res["tensors"], res["numpy"]))
            print(f"U = {used:>6} ({mb:5.0f} MB): tensors {min(res['tensors']):.2f}-{max(res['tensors']):.2f} s, "
                  f"numpy {min(res['numpy']):.2f}-{max(res['numpy']):.2f} s: {ratio[0]:.1f}-{ratio[-1]:.1f}x faster",
                  flush=True)


if __name__ == "__main__":
    main()
