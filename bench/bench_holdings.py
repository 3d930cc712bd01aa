"""What trained portfolio policies hold on a split: net and gross exposure, the share of short
positions, the spread of the average weight across assets, and the relaxed policies' measured
equivariance error at the evaluation that chose best.pt (from metrics.csv).

    .venv/bin/python bench/bench_holdings.py runs/results/sac-*-s0 runs/results/sac-*-s1 [--split test]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd


def holdings(run_dir, split="test") -> dict:
    from eqtrade.backtest import backtest_run

    bts, ctx = backtest_run(run_dir, split)  # best.pt, drift costs, as `eqtrade backtest`
    w = bts[0].weights.to_numpy()
    m = pd.read_csv(Path(run_dir) / "metrics.csv").dropna(subset=["eval_return"])
    best = m.loc[m["eval_return"].idxmax()]
    err = best.get("equivariance_error", np.nan)
    return {"run": Path(run_dir).name, "family": ctx["family"], "net exposure": w.sum(1).mean(),
            "gross exposure": np.abs(w).sum(1).mean(), "short share": (w < 0).mean(),
            "mean weight min": w.mean(0).min(), "mean weight max": w.mean(0).max(),
            "equivariance error at best.pt": err}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--split", default="test")
    args = ap.parse_args(argv)
    rows = [holdings(r, args.split) for r in args.runs]
    print(f"holdings of the best.pt policies on the {args.split} split (drift costs)")
    print(pd.DataFrame(rows).to_markdown(index=False, floatfmt=".3f"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
