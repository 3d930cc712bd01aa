"""Secondary paired comparisons on a walk-forward report's joined paths (no new read of the test
data: the report's returns.parquet): each family's seed book against volatility-managed EW and
against each other (every pair of configurations), with the same stationary bootstrap as the report.
Several reports of the same walk-forward folds are joined on their dates (each book labelled by its
study where two studies name a configuration alike; the baselines from the first report).

    .venv/bin/python bench/walkforward_pairs.py [runs/sweeps/walkforward-families/report] [REPORT...] [--equity PNG]

--equity PNG: also the equity curves (growth of 1, log scale) of every configuration's seed book and
of equal weight, volatility-managed EW and buy & hold EW over the joined test days.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from eqtrade.backtest.stats import delta_sharpe, jobson_korkie_memmel


def equity_plot(rets: pd.DataFrame, books: dict[str, str], path: Path) -> None:
    """Growth of 1 of each seed book and of the baselines, on a log axis, to `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.5))
    lines = [(f"SAC {b}", c, "-") for b, c in books.items()]
    lines += [(n, n, "--") for n in ("equal weight (daily)", "volatility-managed EW", "buy & hold EW") if n in rets]
    for label, col, style in lines:
        ax.plot(rets.index, (1 + rets[col]).cumprod(), style, lw=1.2, label=label)
    ax.set_yscale("log")
    ax.set_ylabel("growth of 1 (log scale)")
    ax.set_title(f"walk-forward out of sample, {rets.index[0]:%Y-%m-%d} .. {rets.index[-1]:%Y-%m-%d}")
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"wrote {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("reports", nargs="*", type=Path, default=[Path("runs/sweeps/walkforward-families/report")])
    ap.add_argument("--equity", type=Path, default=None, metavar="PNG")
    args = ap.parse_args()
    reports = args.reports
    for report in reports:
        if not (report / "returns.parquet").is_file():
            raise SystemExit(f"{report}: no returns.parquet (not a walk-forward report directory)")
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
        if args.equity is not None and nz == noises[0]:
            equity_plot(rets, books, args.equity)
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda x: f"{x:.3f}"))


if __name__ == "__main__":
    main()
