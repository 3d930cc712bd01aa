"""What validation chose in a walk-forward sweep: per configuration (the trial directory's name
without its seed and fold), the mean over its runs of the best validation return (metrics.csv's
eval_return, the number best.pt is selected on). Reads only the runs' training logs: no test data.

    .venv/bin/python bench/walkforward_valid.py runs/sweeps/walkforward-horizons [SWEEP...]
"""

from __future__ import annotations

import argparse
import re
from collections import defaultdict
from pathlib import Path

import pandas as pd


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sweeps", nargs="+", type=Path)
    args = ap.parse_args()
    for sweep in args.sweeps:
        runs = sorted((sweep / "runs").glob("*/metrics.csv"))
        if not runs:
            raise SystemExit(f"{sweep}: no runs/*/metrics.csv (not a sweep directory)")
        best = defaultdict(list)
        for m in runs:
            config = ",".join(p for p in m.parent.name.split(",") if not re.match(r"(seed|fold)=", p)) or "(one)"
            best[config].append(pd.read_csv(m)["eval_return"].max())
        for config, values in best.items():
            print(f"{sweep.name}: {config}: {len(values)} runs, mean best validation return {sum(values) / len(values):.3f}")


if __name__ == "__main__":
    main()
