"""Secondary paired comparisons on a walk-forward report's joined paths (no new read of the test
data: the report's returns.parquet): each family's seed book against volatility-managed EW and
against each other (every pair of configurations), with the same stationary bootstrap as the report.

    .venv/bin/python bench/walkforward_pairs.py [runs/sweeps/walkforward-families/report]
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from eqtrade.backtest.stats import delta_sharpe, jobson_korkie_memmel


def main() -> None:
    report = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/sweeps/walkforward-families/report")
    rets = pd.read_parquet(report / "returns.parquet")
    noises = sorted({c.rsplit("@ noise ", 1)[1] for c in rets if "@ noise " in c}) or [""]
    rows = []
    for nz in noises:
        col = (lambda n: f"{n} @ noise {nz}") if nz else (lambda n: n)
        # every configuration's seed book ("SAC <label> (mean of K seeds)"), in the report's order
        books = {c[len("SAC "):].split(" (mean of")[0]: c for c in rets
                 if c.startswith("SAC ") and " (mean of " in c and (not nz or c.endswith(f"@ noise {nz}"))}
        pairs = [(f"SAC {f}", c, "volatility-managed EW", col("volatility-managed EW")) for f, c in books.items()]
        names = list(books)
        pairs += [(f"SAC {a}", books[a], f"SAC {b}", books[b]) for i, a in enumerate(names) for b in names[i + 1:]]
        pairs += [("volatility-managed EW", col("volatility-managed EW"), "equal weight", col("equal weight (daily)"))]
        for a, ca, b, cb in pairs:
            d = delta_sharpe(rets[ca].to_numpy(), rets[cb].to_numpy(), n_boot=2000, seed=0)
            _, p = jobson_korkie_memmel(rets[ca].to_numpy(), rets[cb].to_numpy())
            rows.append({"noise": nz or "0", "a": a, "b": b, "ΔSharpe": d["delta"], "lo": d["lo"], "hi": d["hi"],
                         "JKM p": p})
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda x: f"{x:.3f}"))


if __name__ == "__main__":
    main()
