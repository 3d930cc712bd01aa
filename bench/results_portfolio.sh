#!/usr/bin/env bash
# The comparison in docs/results.md: SAC plain / exact / relaxed on the bundled 20-stock
# long/short portfolio (train split, 3 000 steps each, seeds 0 and 1), compared out of sample on
# the test split, with and without observation noise, next to the baselines.
# Run from the repository root after `make setup`:  bash bench/results_portfolio.sh
set -euo pipefail
STEPS=${STEPS:-3000}
SEEDS=${SEEDS:-"0 1"}
for seed in $SEEDS; do
  for fam in plain relaxed exact; do
    out=runs/results/sac-$fam-s$seed
    [ -f "$out/checkpoint.pt" ] || OMP_NUM_THREADS=1 .venv/bin/eqtrade train --agent "$fam" --steps "$STEPS" \
      --seed "$seed" --out "$out" --no-progress
  done
done
.venv/bin/eqtrade compare runs/results/sac-*-s* --split test --obs-noise 0,0.05 --out backtests/results-test
.venv/bin/eqtrade backtest strategies/baseline-equal-weight.toml --split test --out backtests/results-baseline --no-html
