"""Training cost as a turnover regulariser, measured on the valid split only.

Trains the default strategy of one family (strategies/sac-FAMILY.toml) on the bundled 20 stocks
with the training env charging each of several costs (evaluations always charge the broker's
10 bps), and prints, at the last evaluation and at the best one (best.pt), the valid-split Sharpe
and turnover next to the train split's. The test split is never read.

    .venv/bin/python bench/bench_train_cost.py [--family relaxed] [--costs 10,20,30,50,100] [--steps 20000]
    .venv/bin/python bench/bench_train_cost.py --planted --family plain --costs 10,20,30,50 --steps 6000

--planted trains on the planted market (eqtrade data planted, stored in a temporary data
directory) instead of the bundled stocks: how bench/bench_planted.py's training cost was chosen.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def train(family: str, cost: float, steps: int, seed: int, tmp: Path, data: list[str]) -> Path:
    from eqtrade.strategies import load_toml
    from eqtrade.util import dump_toml

    cfg = load_toml(ROOT / "strategies" / f"sac-{family}.toml")
    cfg["env"]["cost_bps"] = cost
    path = tmp / f"cost{cost:g}.toml"
    path.write_text(dump_toml(cfg))
    out = tmp / f"{family}-cost{cost:g}"
    subprocess.run([sys.executable, "-m", "eqtrade.cli", "train", "--config", str(path), "--steps", str(steps),
                    "--seed", str(seed), "--out", str(out), "--no-progress", *data], check=True,
                   env=dict(os.environ, OMP_NUM_THREADS="1"), cwd=ROOT, stdout=subprocess.DEVNULL)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", default="relaxed")
    ap.add_argument("--costs", default="10,20,30,50,100")
    ap.add_argument("--steps", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--planted", action="store_true", help="the planted market instead of the bundled stocks")
    args = ap.parse_args(argv)
    costs = [float(c) for c in args.costs.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="bench-train-cost-"))
    data: list[str] = []
    if args.planted:
        store = tmp / "data"
        subprocess.run([sys.executable, "-m", "eqtrade.cli", "data", "planted", "--name", "planted0", "--data-dir",
                        str(store)], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
        data = ["--data", "planted0", "--data-dir", str(store)]
    with ThreadPoolExecutor(args.jobs) as ex:
        outs = list(ex.map(lambda c: train(args.family, c, args.steps, args.seed, tmp, data), costs))
    rows = []
    for c, out in zip(costs, outs):
        m = pd.read_csv(out / "metrics.csv").dropna(subset=["eval_return"])
        last, best = m.iloc[-1], m.loc[m["eval_return"].idxmax()]
        rows.append({"training cost (bps)": c, "valid Sharpe (last)": last["eval_sharpe"],
                     "valid turnover (last)": last["eval_turnover"], "train Sharpe (last)": last["train_sharpe"],
                     "best.pt step": int(best["step"]), "valid Sharpe (best.pt)": best["eval_sharpe"],
                     "train Sharpe (best.pt)": best["train_sharpe"]})
    print(f"{args.family} SAC on {'the planted market' if args.planted else 'the bundled stocks'}, {args.steps} steps, "
          f"seed {args.seed}; evaluations charge 10 bps; valid split only")
    print(pd.DataFrame(rows).to_markdown(index=False, floatfmt=".2f"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
