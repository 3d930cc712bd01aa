"""DQN settings on the planted market's VALID split (the selection step before bench_planted.py
--algo dqn reads the test split once): each setting is strategies/dqn-plain.toml with the planted
training cost and P00 as the evaluation asset (bench_planted.strategy_file) plus the given
[agent]/[env] overrides; it prints the valid Sharpe and turnover at the best evaluation and at
the last. Never reads the test split.

    .venv/bin/python bench/bench_dqn_valid.py '{"exact h4": {"agent": {"targets": "exact", "n_step": 1,
        "gamma": 0.9, "reward_scale": 100.0, "hidden": [4], "eval_every": 2500}}}' [--steps 40000] [--family plain]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
import bench_planted as bp  # noqa: E402


def main(argv=None) -> int:
    from eqtrade.cli import main as cli
    from eqtrade.strategies import load_toml
    from eqtrade.util import dump_toml

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("settings", help='JSON: {"name": {"agent": {...}, "env": {...}}, ...}')
    ap.add_argument("--steps", type=int, default=40000)
    ap.add_argument("--family", default="plain")
    ap.add_argument("--market-seed", type=int, default=0)
    args = ap.parse_args(argv)
    try:
        settings = json.loads(args.settings)
    except json.JSONDecodeError as e:
        ap.error(f"settings are not JSON: {e}")
    tmp = Path(tempfile.mkdtemp(prefix="bench-dqn-valid-"))
    os.environ["EQTRADE_DATA"] = str(tmp / "data")
    name = f"planted{args.market_seed}"
    cli(["data", "planted", "--name", name, "--seed", str(args.market_seed), "--force"])
    rows = []
    for label, changes in settings.items():
        cfg = load_toml(bp.strategy_file(args.family, "default", tmp, "dqn"))
        for table, kv in changes.items():
            cfg.setdefault(table, {}).update(kv)
        path = tmp / f"{label.replace(' ', '_')}.toml"
        path.write_text(dump_toml(cfg))
        out = tmp / label.replace(" ", "_")
        if cli(["train", "--config", str(path), "--data", name, "--steps", str(args.steps), "--out", str(out),
                "--no-progress"]) != 0:
            raise SystemExit(f"{label}: eqtrade train failed")
        m = pd.read_csv(out / "metrics.csv").dropna(subset=["eval_sharpe"])
        best = m.loc[m["eval_return"].idxmax()]
        rows.append(f"| {label} | {int(best.step)} | {best.eval_sharpe:.2f} | {best.eval_turnover:.3f} | "
                    f"{m.eval_sharpe.iloc[-1]:.2f} | {m.eval_turnover.iloc[-1]:.3f} |")
    print("\n| setting | best step | valid Sharpe | turnover/day | last valid Sharpe | last turnover |")
    print("| --- | --- | --- | --- | --- | --- |")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
