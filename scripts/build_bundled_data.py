"""Rebuild the bundled dataset (eqtrade/data/bundled/) from the real prices in ../shared/data/.

Run: .venv/bin/python scripts/build_bundled_data.py [--src ../shared/data]
It converts each CSV to parquet unchanged (same dates, same values) and records provenance:
the sha256 of each original file and of each parquet file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "eqtrade" / "data" / "bundled"

# dataset name -> (source file, description)
SOURCES = {
    "sp500-20": ("sp500_20_stocks_adjclose.csv.gz", "adjusted close of 20 S&P 500 constituents"),
    "sp500-index": ("sp500_index_adjclose.csv.gz", "S&P 500 index level (default benchmark)"),
    "factor-etfs": ("factor_etfs_adjclose.csv.gz", "adjusted close of five factor ETFs"),
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--src", type=Path, default=ROOT.parent / "shared" / "data")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    entries = {}
    for name, (fname, desc) in SOURCES.items():
        src = args.src / fname
        df = pd.read_csv(src, index_col=0, parse_dates=True)
        df.index.name = "date"
        df = df.astype("float64")
        dst = OUT / f"{name}.parquet"
        df.to_parquet(dst, compression="zstd")
        entries[name] = {
            "file": dst.name,
            "description": desc,
            "source_file": fname,
            "source_sha256": sha256(src),
            "parquet_sha256": sha256(dst),
            "tickers": list(df.columns),
            "rows": int(len(df)),
            "first": df.index[0].strftime("%Y-%m-%d"),
            "last": df.index[-1].strftime("%Y-%m-%d"),
        }
    prov = {
        "source": "skfolio 1.12.2 bundled datasets (prices originate from Yahoo Finance)",
        "licence": "BSD 3-Clause, copyright the skfolio developers",
        "default": "sp500-20",
        "datasets": entries,
    }
    (OUT / "provenance.json").write_text(json.dumps(prov, indent=2) + "\n")
    print(json.dumps(prov, indent=2))


if __name__ == "__main__":
    main()
