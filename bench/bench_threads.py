"""Torch intra-op threads for eqtrade's small networks: a 2 000-step portfolio SAC run (the default
agent) timed with 1 thread (eqtrade's default) and with torch's default (one per core), on an idle
machine and beside one CPU-bound process (a busy loop in another process), in the same run.

    .venv/bin/python bench/bench_threads.py [--steps 2000] [--repeats 1]

Prints one line per setting, the ratio to the 1-thread idle anchor, and a markdown table.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _burn(stop) -> None:
    x = 0
    while not stop.is_set():
        x = (x * 1103515245 + 12345) % 2**31


def _train(steps: int, threads: int | None) -> float:
    with tempfile.TemporaryDirectory() as d:
        cmd = [sys.executable, "-m", "eqtrade.cli", "train", "--steps", str(steps), "--out", str(Path(d) / "r"),
               "--no-progress", "--device", "cpu"]
        if threads is not None:
            cmd += ["--threads", str(threads)]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, env=dict(os.environ, MUJOCO_GL="disable"))
        return time.perf_counter() - t0


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=2000)  # the default run's smallest budget (learning_starts 1000, an evaluation at 2000)
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args(argv)
    cores = os.cpu_count() or 1
    rows = []
    for busy in (False, True):
        stop = mp.Event()
        burner = mp.Process(target=_burn, args=(stop,), daemon=True) if busy else None
        if burner:
            burner.start()
        try:
            for threads, label in ((1, "1 thread (default)"), (cores, f"{cores} threads (torch's default)")):
                secs = min(_train(args.steps, threads) for _ in range(args.repeats))
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
