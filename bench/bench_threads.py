"""Torch intra-op threads for eqtrade's networks: a training run (default: 2 000 steps of the
default portfolio SAC) timed with 1 thread (eqtrade's default) and with torch's default (one per
core), on an idle machine and beside one CPU-bound process (a busy loop in another process), in
the same run. `--train` passes other `eqtrade train` arguments: the larger networks, where more
threads may pay (dm_control state SAC, 2x256; DrQ-v2 from pixels).

    .venv/bin/python bench/bench_threads.py [--steps 2000] [--repeats 1]
    .venv/bin/python bench/bench_threads.py --train "--env dmc/cartpole-swingup --agent plain" --steps 2000
    .venv/bin/python bench/bench_threads.py --train "--config bench/configs/drqv2-smoke.toml" --steps 1000

Prints one line per setting, the ratio to the 1-thread idle anchor, and a markdown table.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _burn(stop) -> None:
    x = 0
    while not stop.is_set():
        x = (x * 1103515245 + 12345) % 2**31


def _train(steps: int, threads: int | None, extra: list[str]) -> float:
    with tempfile.TemporaryDirectory() as d:
        cmd = [sys.executable, "-m", "eqtrade.cli", "train", *extra, "--steps", str(steps), "--out", str(Path(d) / "r"),
               "--no-progress", "--device", "cpu"]
        if threads is not None:
            cmd += ["--threads", str(threads)]
        t0 = time.perf_counter()
        pixels = any("pixels" in a or "drqv2" in a for a in extra)  # pixel tasks render (EGL); state tasks need no GL
        env = dict(os.environ) if pixels else dict(os.environ, MUJOCO_GL="disable")
        p = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if p.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{p.stderr[-2000:]}")
        return time.perf_counter() - t0


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=2000)  # the default run's smallest budget (learning_starts 1000, an evaluation at 2000)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--train", default="", help="more `eqtrade train` arguments, one string (e.g. \"--env dmc/cartpole-swingup\")")
    args = ap.parse_args(argv)
    extra = shlex.split(args.train)
    print(f"eqtrade train {args.train or '(the default portfolio SAC)'} --steps {args.steps}", flush=True)
    cores = os.cpu_count() or 1
    rows = []
    for busy in (False, True):
        stop = mp.Event()
        burner = mp.Process(target=_burn, args=(stop,), daemon=True) if busy else None
        if burner:
            burner.start()
        try:
            for threads, label in ((1, "1 thread (default)"), (cores, f"{cores} threads (torch's default)")):
                secs = min(_train(args.steps, threads, extra) for _ in range(args.repeats))
                rows.append((("beside 1 busy process" if busy else "idle"), label, secs))
                print(f"{rows[-1][0]:22s} {label:28s} {secs:6.1f} s", flush=True)
        finally:
            if burner:
                stop.set()
                burner.join()
    anchor = rows[0][2]
    print(f"\n| machine | threads | {args.steps}-step run (s) | ratio to 1 thread idle |\n|---|---|---|---|")
    for m, label, secs in rows:
        print(f"| {m} | {label} | {secs:.1f} | {secs / anchor:.2f} |")


if __name__ == "__main__":
    main()
