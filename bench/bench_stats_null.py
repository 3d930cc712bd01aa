"""Null coverage of the paired ΔSharpe interval (`eqtrade.backtest.stats.delta_sharpe`).

Two independent random strategies per draw (a: mean 5 bps/day, sd 1%; b: mean 0, sd 1.2%; 750
days, about three years), whose true annual Sharpe difference is 0.05·√252 = 0.794: the share of
draws whose 95% stationary-bootstrap interval covers it, with its binomial 95% interval, and the
bootstrap's standard error against the spread of the estimates over the draws.

    .venv/bin/python bench/bench_stats_null.py [--draws 2000] [--n-boot 500]
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from eqtrade.backtest import stats as S


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--draws", type=int, default=2000)
    ap.add_argument("--n-boot", type=int, default=500)
    ap.add_argument("--days", type=int, default=750)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    true = 5e-4 / 0.01 * math.sqrt(252)
    rng = np.random.default_rng(args.seed)
    t0, cover, deltas, ses = time.time(), 0, [], []
    for k in range(args.draws):
        a, b = rng.normal(5e-4, 0.01, args.days), rng.normal(0.0, 0.012, args.days)
        d = S.delta_sharpe(a, b, n_boot=args.n_boot, seed=k)
        cover += d["lo"] <= true <= d["hi"]
        deltas.append(d["delta"])
        ses.append(d["se"])
    p = cover / args.draws
    half = 1.96 * math.sqrt(p * (1 - p) / args.draws)
    print(f"coverage of the true ΔSharpe {true:.3f} by the 95% interval: {cover}/{args.draws} = {p:.3f} "
          f"(binomial 95%: {p - half:.3f}..{p + half:.3f}); {args.days} days, {args.n_boot} resamples, "
          f"mean block {S.default_block(args.days)}")
    print(f"spread of the estimates {np.std(deltas):.3f}, mean bootstrap SE {np.mean(ses):.3f} "
          f"(ratio {np.mean(ses) / np.std(deltas):.3f}); {time.time() - t0:.1f} s")


if __name__ == "__main__":
    main()
