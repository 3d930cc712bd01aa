"""The dm_control suite through the sweep engine (Ray Tune) against the home-made process pool it
replaced, on the same machine, in the same session: wall time of `eqtrade dmc` with the same
settings, the overhead per trial, and whether the final returns are identical (same seeds, one
thread per run: they should be, since only the scheduling changed).

The old pool is run from a git worktree of commit 89fefe0 (the last commit with
eqtrade/agents/suite.py's pool), created under bench/.cache/ on first use.

    .venv/bin/python bench/bench_sweep.py                 # --quick settings: 6 runs of 1 500 steps, 2 at a time
    .venv/bin/python bench/bench_sweep.py --full          # docs/results.md §4: 18 runs of 12 500 steps (hours)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OLD = "89fefe0"


def worktree() -> Path:
    path = REPO / "bench" / ".cache" / f"eqtrade-{OLD}"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(path), OLD], check=True,
                       capture_output=True)
    return path


def run(cmd: list[str], pythonpath: Path, out: Path) -> float:
    env = {"PYTHONPATH": str(pythonpath), "PATH": "/usr/bin:/bin", "MUJOCO_GL": "disable", "HOME": str(Path.home())}
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import sys; from eqtrade.cli import main; sys.exit(main(sys.argv[1:]))",
                    *cmd, "--out", str(out), "--no-progress"], check=True, env=env, cwd=pythonpath,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def finals(out: Path) -> dict:
    return {str(p.parent.relative_to(out)): json.loads(p.read_text())["returns"]
            for p in sorted(out.glob("*/break-*/*/result.json"))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", action="store_true", help="the settings of docs/results.md §4 (long)")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args(argv)
    cmd = (["dmc", "--domains", "cartpole-swingup", "--break", "0,0.5", "--agents", "plain,exact,relaxed",
            "--seeds", "3", "--steps", "12500", "--obs-noise", "0,0.05,0.1"] if args.full else ["dmc", "--quick"])
    cmd += ["--jobs", str(args.jobs)]
    old = worktree()
    with tempfile.TemporaryDirectory() as tmp:
        t_old = run(cmd, old, Path(tmp) / "old")
        t_new = run(cmd, REPO, Path(tmp) / "new")
        a, b = finals(Path(tmp) / "old"), finals(Path(tmp) / "new")
    n = len(b)
    print(f"eqtrade {' '.join(cmd)}: {n} runs, {args.jobs} at a time")
    print(f"| engine | wall time (s) |\n| --- | --- |\n| process pool ({OLD}) | {t_old:.1f} |\n| Ray Tune (HEAD) | {t_new:.1f} |")
    print(f"ratio Ray / pool: {t_new / t_old:.2f}; overhead per trial: {(t_new - t_old) * args.jobs / n:+.1f} s "
          f"(wall difference x jobs / runs)")
    same = a == b
    print(f"final returns identical between the engines: {same}" + ("" if same else f"\nold {a}\nnew {b}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
