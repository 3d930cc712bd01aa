"""Secondary paired comparisons on a walk-forward report's joined paths (no new read of the test
data: the report's returns.parquet): each family's seed book against volatility-managed EW and
against each other (every pair of configurations), with the same stationary bootstrap as the report.
Several reports of the same walk-forward folds are joined on their dates (each book labelled by its
study where two studies name a configuration alike; the baselines from the first report).

    .venv/bin/python bench/walkforward_pairs.py [runs/sweeps/walkforward-families/report] [REPORT...]
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from eqtrade.backtest.stats import delta_sharpe, jobson_korkie_memmel


def main() -> None:
    reports = [Path(a) for a in sys.argv[1:]] or [Path("runs/sweeps/walkforward-families/report")]
    rets = pd.read_parquet(reports[0] / "returns.parquet")
    for report in reports[1:]:
        more = pd.read_parquet(report / "returns.parquet")
        if not more.index.equals(rets.index):
            raise SystemExit(f"{report}: its test days differ from {reports[0]}'s (not the same walk-forward folds)")
        study = report.parent.name
        books = [c for c in more if c.startswith("SAC ")]
        rets = rets.join(more[books].rename(columns=lambda c: c.replace("SAC ", f"SAC [{study}] ", 1)
                                             if c in rets else c))
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
